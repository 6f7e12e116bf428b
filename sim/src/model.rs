//! The sequential specification the linearizability checker compares the cluster against: a
//! root directory whose entries come from a small fixed alphabet of names.
//!
//! The workload only touches the root of one file system, so a state is "which of the names
//! exist, and as what": two bits per name, a `u32` for up to 16 names. That makes states
//! cheap to copy and hash, which the checker's memoised search relies on. The model is kept
//! independent of `bucketfs-meta-state` on purpose: it is a second, much smaller statement of
//! the POSIX rules the workload exercises, and a unit test (`model_agrees_with_state_machine`
//! in `crate::workload`) runs both side by side on random operation sequences so that a
//! disagreement shows up there rather than as a bogus linearizability failure.
//!
//! Replies are compared in an abstract form ([`Answer`]): inode numbers, change counters and
//! times depend on log indexes the model cannot know, so they are left out.

use std::fmt;

/// The names the workload uses. Few, so that clients collide on them.
pub const NAMES: [&str; 5] = ["a", "b", "c", "d", "e"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
}

/// An operation of the workload, on the root directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsOp {
    /// Guarded create of a file or an (empty) directory.
    Create {
        name: u8,
        kind: Kind,
    },
    /// REMOVE of whatever the name holds.
    Remove {
        name: u8,
    },
    Rename {
        from: u8,
        to: u8,
    },
    Lookup {
        name: u8,
    },
    ReadDir,
    /// GETATTR of the root: its link count counts the subdirectories.
    GetAttrRoot,
}

impl NsOp {
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            NsOp::Lookup { .. } | NsOp::ReadDir | NsOp::GetAttrRoot
        )
    }
}

impl fmt::Display for NsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NsOp::Create { name, kind } => write!(f, "create({}, {kind:?})", name_of(name)),
            NsOp::Remove { name } => write!(f, "remove({})", name_of(name)),
            NsOp::Rename { from, to } => write!(f, "rename({}, {})", name_of(from), name_of(to)),
            NsOp::Lookup { name } => write!(f, "lookup({})", name_of(name)),
            NsOp::ReadDir => write!(f, "readdir"),
            NsOp::GetAttrRoot => write!(f, "getattr(/)"),
        }
    }
}

pub fn name_of(i: u8) -> &'static str {
    NAMES.get(usize::from(i)).copied().unwrap_or("?")
}

pub fn index_of(name: &str) -> Option<u8> {
    NAMES.iter().position(|n| *n == name).map(|i| i as u8)
}

/// The refusals the workload can run into, as the model states them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Refusal {
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
    /// Anything else, by name; the model never produces it, so it never matches.
    Other(String),
}

/// A reply with everything the model cannot predict (inode numbers, counters, times) left out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Answer {
    Done,
    Refused(Refusal),
    Found(Kind),
    Listing(NsState),
    RootLinks(u32),
    /// A reply of the wrong shape for its operation, kept verbatim for the report.
    Unexpected(String),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Done => write!(f, "ok"),
            Answer::Refused(r) => write!(f, "err {r:?}"),
            Answer::Found(k) => write!(f, "found {k:?}"),
            Answer::Listing(s) => write!(f, "listing {s}"),
            Answer::RootLinks(n) => write!(f, "nlink {n}"),
            Answer::Unexpected(s) => write!(f, "unexpected {s}"),
        }
    }
}

/// The root directory: two bits per name (0 absent, 1 file, 2 directory).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct NsState(pub u32);

impl NsState {
    pub fn get(&self, name: u8) -> Option<Kind> {
        match (self.0 >> (2 * u32::from(name))) & 3 {
            1 => Some(Kind::File),
            2 => Some(Kind::Dir),
            _ => None,
        }
    }

    pub fn with(self, name: u8, kind: Option<Kind>) -> NsState {
        let shift = 2 * u32::from(name);
        let bits = match kind {
            None => 0,
            Some(Kind::File) => 1,
            Some(Kind::Dir) => 2,
        };
        NsState((self.0 & !(3 << shift)) | (bits << shift))
    }

    pub fn dirs(&self) -> u32 {
        (0..NAMES.len() as u8)
            .filter(|n| self.get(*n) == Some(Kind::Dir))
            .count() as u32
    }

    /// Applies `op` and returns the new state and the reply.
    pub fn step(self, op: &NsOp) -> (NsState, Answer) {
        match *op {
            NsOp::Create { name, kind } => match self.get(name) {
                Some(_) => (self, Answer::Refused(Refusal::Exists)),
                None => (self.with(name, Some(kind)), Answer::Done),
            },
            // Directories of this workload are always empty, so removing one succeeds.
            NsOp::Remove { name } => match self.get(name) {
                None => (self, Answer::Refused(Refusal::NotFound)),
                Some(_) => (self.with(name, None), Answer::Done),
            },
            NsOp::Rename { from, to } => {
                let Some(src) = self.get(from) else {
                    return (self, Answer::Refused(Refusal::NotFound));
                };
                if from == to {
                    return (self, Answer::Done);
                }
                match (src, self.get(to)) {
                    (_, None) | (Kind::File, Some(Kind::File)) | (Kind::Dir, Some(Kind::Dir)) => {
                        (self.with(to, Some(src)).with(from, None), Answer::Done)
                    }
                    (Kind::File, Some(Kind::Dir)) => (self, Answer::Refused(Refusal::IsDir)),
                    (Kind::Dir, Some(Kind::File)) => (self, Answer::Refused(Refusal::NotDir)),
                }
            }
            NsOp::Lookup { name } => match self.get(name) {
                Some(k) => (self, Answer::Found(k)),
                None => (self, Answer::Refused(Refusal::NotFound)),
            },
            NsOp::ReadDir => (self, Answer::Listing(self)),
            NsOp::GetAttrRoot => (self, Answer::RootLinks(2 + self.dirs())),
        }
    }
}

impl fmt::Display for NsState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        let mut first = true;
        for n in 0..NAMES.len() as u8 {
            if let Some(k) = self.get(n) {
                if !first {
                    write!(f, " ")?;
                }
                first = false;
                match k {
                    Kind::File => write!(f, "{}", name_of(n))?,
                    Kind::Dir => write!(f, "{}/", name_of(n))?,
                }
            }
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_rules_of_the_flat_namespace() {
        let s = NsState::default();
        let (s, r) = s.step(&NsOp::Create {
            name: 0,
            kind: Kind::File,
        });
        assert_eq!(r, Answer::Done);
        let (s, r) = s.step(&NsOp::Create {
            name: 0,
            kind: Kind::Dir,
        });
        assert_eq!(r, Answer::Refused(Refusal::Exists));
        let (s, _) = s.step(&NsOp::Create {
            name: 1,
            kind: Kind::Dir,
        });
        assert_eq!(s.step(&NsOp::GetAttrRoot).1, Answer::RootLinks(3));
        assert_eq!(
            s.step(&NsOp::Rename { from: 0, to: 1 }).1,
            Answer::Refused(Refusal::IsDir)
        );
        assert_eq!(
            s.step(&NsOp::Rename { from: 1, to: 0 }).1,
            Answer::Refused(Refusal::NotDir)
        );
        let (s2, r) = s.step(&NsOp::Rename { from: 0, to: 2 });
        assert_eq!(r, Answer::Done);
        assert_eq!(s2.get(0), None);
        assert_eq!(s2.get(2), Some(Kind::File));
        assert_eq!(s2.to_string(), "{b/ c}");
        let (s3, r) = s2.step(&NsOp::Rename { from: 3, to: 2 });
        assert_eq!((s3, r), (s2, Answer::Refused(Refusal::NotFound)));
        let (s4, r) = s2.step(&NsOp::Remove { name: 1 });
        assert_eq!(r, Answer::Done);
        assert_eq!(s4.step(&NsOp::GetAttrRoot).1, Answer::RootLinks(2));
        assert_eq!(
            s4.step(&NsOp::Lookup { name: 1 }).1,
            Answer::Refused(Refusal::NotFound)
        );
        assert_eq!(
            s4.step(&NsOp::Lookup { name: 2 }).1,
            Answer::Found(Kind::File)
        );
    }
}
