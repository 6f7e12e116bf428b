//! Invariant: the namespace history is linearizable (DESIGN.md invariant 4).
//!
//! A Wing–Gong search with Lowe's memoisation: look for an order of the operations that
//! respects real time (an operation that returned before another was invoked comes first) and
//! in which every reply equals what the sequential model ([`crate::model`]) answers. The
//! search state is (set of operations already placed, model state); a state seen before is
//! not explored again.
//!
//! * Operations that failed for certain are left out: they did not happen.
//! * Operations whose reply never came are "unknown": they may be placed anywhere after their
//!   invocation, or nowhere, and their reply is not checked. Unknown reads are left out since
//!   they cannot change anything.
//! * Two prunings keep the search small, both sound: an operation that leaves the state as it
//!   is and whose reply matches is placed at once without trying alternatives (placing it
//!   early can only relax the real-time constraints on the others); an unknown operation that
//!   would not change the state is never placed (its effect is the same as leaving it out).
//!
//! The search is bounded; running out of budget is reported as inconclusive, which the run
//! treats as a failure: a seed's history is fixed, so the verdict is reproducible either way.

use std::collections::HashSet;
use std::fmt::Write;

use crate::history::{HistOp, Outcome};
use crate::model::{Answer, NsOp, NsState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable {
        /// Operations whose replies were checked.
        checked: usize,
        /// Unknown operations that were allowed to float.
        unknown: usize,
        /// Search nodes expanded.
        explored: u64,
    },
    Violation(String),
    Inconclusive {
        explored: u64,
    },
}

struct Op {
    op: NsOp,
    invoke: u64,
    /// `u64::MAX` for unknown operations.
    ret: u64,
    /// The reply to check; `None` for unknown operations.
    answer: Option<Answer>,
    /// Index in the caller's history, for reports.
    source: usize,
}

struct Search<'a> {
    ops: &'a [Op],
    visited: HashSet<(Vec<u64>, NsState)>,
    explored: u64,
    budget: u64,
    placed: Vec<usize>,
    /// The furthest the search got, for the report.
    best: (usize, Vec<usize>, NsState, Vec<usize>),
    out_of_budget: bool,
}

pub fn check(history: &[HistOp], initial: NsState, budget: u64) -> Verdict {
    let mut ops: Vec<Op> = history
        .iter()
        .enumerate()
        .filter_map(|(i, h)| match &h.outcome {
            Outcome::Ok(a) => Some(Op {
                op: h.op,
                invoke: h.invoke,
                ret: h.ret.unwrap_or(u64::MAX),
                answer: Some(a.clone()),
                source: i,
            }),
            Outcome::Pending | Outcome::Unknown(_) if !h.op.is_read() => Some(Op {
                op: h.op,
                invoke: h.invoke,
                ret: u64::MAX,
                answer: None,
                source: i,
            }),
            _ => None,
        })
        .collect();
    ops.sort_by_key(|o| o.invoke);
    let checked = ops.iter().filter(|o| o.answer.is_some()).count();
    let unknown = ops.len() - checked;
    let words = ops.len().div_ceil(64).max(1);
    let mut search = Search {
        ops: &ops,
        visited: HashSet::new(),
        explored: 0,
        budget,
        placed: Vec::new(),
        best: (0, Vec::new(), initial, Vec::new()),
        out_of_budget: false,
    };
    let mut done = vec![0u64; words];
    if search.dfs(&mut done, initial, checked) {
        return Verdict::Linearizable {
            checked,
            unknown,
            explored: search.explored,
        };
    }
    if search.out_of_budget {
        return Verdict::Inconclusive {
            explored: search.explored,
        };
    }
    Verdict::Violation(search.report(history))
}

fn is_set(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

fn set(done: &mut [u64], i: usize, on: bool) {
    if on {
        done[i / 64] |= 1 << (i % 64);
    } else {
        done[i / 64] &= !(1 << (i % 64));
    }
}

impl Search<'_> {
    /// `remaining`: complete operations not yet placed.
    fn dfs(&mut self, done: &mut Vec<u64>, state: NsState, remaining: usize) -> bool {
        if remaining == 0 {
            return true;
        }
        if self.explored >= self.budget {
            self.out_of_budget = true;
            return false;
        }
        self.explored += 1;
        if !self.visited.insert((done.clone(), state)) {
            return false;
        }
        // Everything invoked before the earliest pending reply may go next.
        let horizon = self
            .ops
            .iter()
            .enumerate()
            .filter(|(i, o)| o.answer.is_some() && !is_set(done, *i))
            .map(|(_, o)| o.ret)
            .min()
            .unwrap_or(u64::MAX);
        let candidates: Vec<usize> = (0..self.ops.len())
            .take_while(|i| self.ops[*i].invoke < horizon)
            .filter(|i| !is_set(done, *i))
            .collect();

        let placed_complete = self.placed_complete_count();
        if placed_complete > self.best.0
            || (placed_complete == self.best.0 && self.best.1.is_empty())
        {
            self.best = (
                placed_complete,
                self.placed.clone(),
                state,
                candidates.clone(),
            );
        }

        // A matching operation that does not change the state is placed without branching.
        for &i in &candidates {
            let o = &self.ops[i];
            if let Some(expected) = &o.answer {
                let (next, got) = state.step(&o.op);
                if next == state && &got == expected {
                    set(done, i, true);
                    self.placed.push(i);
                    let ok = self.dfs(done, state, remaining - 1);
                    self.placed.pop();
                    set(done, i, false);
                    return ok;
                }
            }
        }
        for &i in &candidates {
            let o = &self.ops[i];
            let (next, got) = state.step(&o.op);
            let counts = match &o.answer {
                Some(expected) => {
                    if &got != expected {
                        continue;
                    }
                    1
                }
                None => {
                    if next == state {
                        continue;
                    }
                    0
                }
            };
            set(done, i, true);
            self.placed.push(i);
            let ok = self.dfs(done, next, remaining - counts);
            self.placed.pop();
            set(done, i, false);
            if ok {
                return true;
            }
            if self.out_of_budget {
                return false;
            }
        }
        false
    }

    fn placed_complete_count(&self) -> usize {
        self.placed
            .iter()
            .filter(|i| self.ops[**i].answer.is_some())
            .count()
    }

    fn report(&self, history: &[HistOp]) -> String {
        let (n, placed, state, candidates) = &self.best;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "not linearizable: at most {n} of {} checked operations fit the model ({} search nodes)",
            self.ops.iter().filter(|o| o.answer.is_some()).count(),
            self.explored,
        );
        let tail = placed.len().saturating_sub(12);
        let _ = writeln!(s, "  a longest valid order ends with:");
        for i in &placed[tail..] {
            let _ = writeln!(s, "    {}", history[self.ops[*i].source]);
        }
        let _ = writeln!(s, "  model state then: {state}; none of these can go next:");
        for i in candidates {
            let o = &self.ops[*i];
            let (_, got) = state.step(&o.op);
            let _ = writeln!(s, "    {}   (model: {got})", history[o.source]);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::model::{Kind, Refusal};

    /// Builds a history from `(client, op, invoke, return, outcome)` rows.
    fn h(rows: &[(usize, NsOp, u64, Option<u64>, Outcome)]) -> Vec<HistOp> {
        rows.iter()
            .map(|(c, op, inv, ret, out)| HistOp {
                client: *c,
                op: *op,
                invoke: *inv,
                ret: *ret,
                invoked_at: Duration::ZERO,
                returned_at: None,
                outcome: out.clone(),
                request: None,
            })
            .collect()
    }

    const A: u8 = 0;
    const B: u8 = 1;
    fn ok(a: Answer) -> Outcome {
        Outcome::Ok(a)
    }
    fn create(name: u8) -> NsOp {
        NsOp::Create {
            name,
            kind: Kind::File,
        }
    }

    #[test]
    fn concurrent_creates_one_wins() {
        let hist = h(&[
            (0, create(A), 1, Some(4), ok(Answer::Done)),
            (
                1,
                create(A),
                2,
                Some(3),
                ok(Answer::Refused(Refusal::Exists)),
            ),
        ]);
        assert!(matches!(
            check(&hist, NsState::default(), 1000),
            Verdict::Linearizable { checked: 2, .. }
        ));
    }

    #[test]
    fn two_winners_is_a_violation() {
        let hist = h(&[
            (0, create(A), 1, Some(4), ok(Answer::Done)),
            (1, create(A), 2, Some(3), ok(Answer::Done)),
        ]);
        match check(&hist, NsState::default(), 1000) {
            Verdict::Violation(report) => assert!(report.contains("create(a")),
            v => panic!("expected a violation, got {v:?}"),
        }
    }

    #[test]
    fn stale_read_after_acknowledged_write_is_a_violation() {
        // The create returned before the lookup was invoked, so the lookup must see it.
        let hist = h(&[
            (0, create(A), 1, Some(2), ok(Answer::Done)),
            (
                1,
                NsOp::Lookup { name: A },
                3,
                Some(4),
                ok(Answer::Refused(Refusal::NotFound)),
            ),
        ]);
        assert!(matches!(
            check(&hist, NsState::default(), 1000),
            Verdict::Violation(_)
        ));
        // Overlapping in time, the same replies are fine.
        let hist = h(&[
            (0, create(A), 1, Some(3), ok(Answer::Done)),
            (
                1,
                NsOp::Lookup { name: A },
                2,
                Some(4),
                ok(Answer::Refused(Refusal::NotFound)),
            ),
        ]);
        assert!(matches!(
            check(&hist, NsState::default(), 1000),
            Verdict::Linearizable { .. }
        ));
    }

    #[test]
    fn unknown_operation_may_or_may_not_have_happened() {
        let read_a = |inv, ret, a| (1, NsOp::Lookup { name: A }, inv, Some(ret), ok(a));
        let lost = (
            0,
            create(A),
            1,
            Some(2),
            Outcome::Unknown("reply lost".into()),
        );
        // Seen as done...
        let hist = h(&[lost.clone(), read_a(5, 6, Answer::Found(Kind::File))]);
        assert!(matches!(
            check(&hist, NsState::default(), 1000),
            Verdict::Linearizable { unknown: 1, .. }
        ));
        // ...or not (yet): an unknown op may take effect late, even after the client gave up.
        let hist = h(&[
            lost.clone(),
            read_a(5, 6, Answer::Refused(Refusal::NotFound)),
            read_a(7, 8, Answer::Found(Kind::File)),
        ]);
        assert!(matches!(
            check(&hist, NsState::default(), 1000),
            Verdict::Linearizable { .. }
        ));
        // But it cannot be undone once observed.
        let hist = h(&[
            lost,
            read_a(5, 6, Answer::Found(Kind::File)),
            read_a(7, 8, Answer::Refused(Refusal::NotFound)),
        ]);
        assert!(matches!(
            check(&hist, NsState::default(), 1000),
            Verdict::Violation(_)
        ));
    }

    #[test]
    fn failed_operations_did_not_happen() {
        let hist = h(&[
            (
                0,
                create(A),
                1,
                Some(2),
                Outcome::Failed("not leader".into()),
            ),
            (
                1,
                NsOp::Lookup { name: A },
                3,
                Some(4),
                ok(Answer::Found(Kind::File)),
            ),
        ]);
        assert!(matches!(
            check(&hist, NsState::default(), 1000),
            Verdict::Violation(_)
        ));
    }

    #[test]
    fn double_applied_rename_is_caught() {
        // A retried rename applied twice would answer NotFound to the client that did it,
        // with nobody else touching the names: no order explains that.
        let hist = h(&[
            (0, create(A), 1, Some(2), ok(Answer::Done)),
            (
                0,
                NsOp::Rename { from: A, to: B },
                3,
                Some(4),
                ok(Answer::Refused(Refusal::NotFound)),
            ),
        ]);
        assert!(matches!(
            check(&hist, NsState::default(), 1000),
            Verdict::Violation(_)
        ));
    }

    #[test]
    fn many_concurrent_clients_stay_cheap() {
        // 4 clients x 60 ops, each op overlapping the other clients' ops: the prunings keep
        // the search linear-ish instead of exponential.
        let mut rows = Vec::new();
        let mut state = NsState::default();
        let mut t = 0;
        for round in 0..60u64 {
            for c in 0..4usize {
                let name = ((round as usize + c) % 5) as u8;
                let op = match (round + c as u64) % 4 {
                    0 => create(name),
                    1 => NsOp::Rename {
                        from: name,
                        to: (name + 1) % 5,
                    },
                    2 => NsOp::Remove { name },
                    _ => NsOp::ReadDir,
                };
                let (next, answer) = state.step(&op);
                state = next;
                // All four of a round overlap: invoked together, answered together.
                rows.push((c, op, t + c as u64, Some(t + 10 + c as u64), ok(answer)));
            }
            t += 20;
        }
        let hist = h(&rows);
        match check(&hist, NsState::default(), 200_000) {
            Verdict::Linearizable {
                checked: 240,
                explored,
                ..
            } => assert!(explored < 20_000),
            v => panic!("{v:?}"),
        }
    }
}
