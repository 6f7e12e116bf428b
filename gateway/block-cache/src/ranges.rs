//! A set of byte offsets kept as sorted, disjoint, non-adjacent half-open ranges.

use std::ops::Range;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<Range<u64>>,
}

impl RangeSet {
    pub fn insert(&mut self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        let (mut start, mut end) = (r.start, r.end);
        // Ranges that overlap or touch `r` merge into it; the rest keep their order.
        let mut out = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for cur in self.ranges.drain(..) {
            if cur.end < start {
                out.push(cur);
            } else if cur.start > end {
                if !placed {
                    out.push(start..end);
                    placed = true;
                }
                out.push(cur);
            } else {
                start = start.min(cur.start);
                end = end.max(cur.end);
            }
        }
        if !placed {
            out.push(start..end);
        }
        self.ranges = out;
    }

    /// Whether every offset of `r` is in the set (an empty range always is).
    pub fn covers(&self, r: &Range<u64>) -> bool {
        r.is_empty()
            || self
                .ranges
                .iter()
                .any(|c| c.start <= r.start && r.end <= c.end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Range<u64>> {
        self.ranges.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merges_overlapping_and_touching_ranges() {
        let mut s = RangeSet::default();
        s.insert(10..20);
        s.insert(30..40);
        s.insert(0..5);
        assert_eq!(
            s.iter().cloned().collect::<Vec<_>>(),
            vec![0..5, 10..20, 30..40]
        );
        s.insert(20..30);
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![0..5, 10..40]);
        s.insert(3..12);
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![0..40]);
        s.insert(50..50);
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![0..40]);
        assert!(s.covers(&(0..40)));
        assert!(!s.covers(&(39..41)));
        assert!(s.covers(&(45..45)));
    }
}
