//! Random command sequences against a reference model of the tree.
//!
//! The model is a second, deliberately naive statement of the rules: nodes in a map, each
//! directory with its children. Every command's outcome (success, "changed nothing", or the
//! error variant) must match, and after every command the whole visible state must match:
//! which inode ids are live, their kind, link count and parent, and every directory's
//! entries as READDIR returns them, and every inode's links (Links, oldest first, against
//! the model's names and their ages) and primary path (Path, which must also look up back to
//! the inode). Row counts catch leaks that no query can see (a cookie row, an inode row or a
//! link index row left behind).
//!
//! The same sequence is also applied in batches (several entries per transaction, as the
//! Raft adapter does) and must produce identical rows and replies: this checks that each
//! entry sees the earlier ones through the transaction overlay, and that apply is
//! deterministic.

mod common;

use std::collections::BTreeMap;

use bucketfs_meta_state::command::{ApplyResult, CreateMode, NewInode, RemoveKind};
use bucketfs_meta_state::kv::{MemKv, Table, Txn};
use bucketfs_meta_state::types::{FileType, FsId, InodeId, SetAttrs};
use bucketfs_meta_state::{Command, Proposal, Query, QueryReply, Reply, apply};
use common::{Harness, error_name};
use proptest::prelude::*;

const FS: FsId = FsId(1);
const NAMES: [&str; 3] = ["a", "b", "c"];
/// The generator draws selectors, not ids: `concretize` turns one into a live directory
/// (or inode) of the model most of the time, and into any id up to this bound otherwise,
/// which is how stale handles and non-directories get tested.
const MAX_ID: u64 = 24;

#[derive(Debug, Clone)]
enum Op {
    Create {
        parent: u64,
        name: usize,
        kind: FileType,
        how: u8,
    },
    Link {
        ino: u64,
        parent: u64,
        name: usize,
    },
    Remove {
        parent: u64,
        name: usize,
        kind: u8,
    },
    Rename {
        sp: u64,
        sn: usize,
        dp: u64,
        dn: usize,
    },
    Truncate {
        ino: u64,
        size: u64,
    },
}

fn kind_strategy() -> impl Strategy<Value = FileType> {
    prop_oneof![
        3 => Just(FileType::Dir),
        3 => Just(FileType::File),
        1 => Just(FileType::Symlink),
        1 => Just(FileType::Fifo),
        1 => Just(FileType::CharDev)
    ]
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let id = 0..=255u64;
    let name = 0..NAMES.len();
    prop_oneof![
        4 => (id.clone(), name.clone(), kind_strategy(), 0u8..5)
            .prop_map(|(parent, name, kind, how)| Op::Create { parent, name, kind, how }),
        1 => (id.clone(), id.clone(), name.clone())
            .prop_map(|(ino, parent, name)| Op::Link { ino, parent, name }),
        2 => (id.clone(), name.clone(), 0u8..3)
            .prop_map(|(parent, name, kind)| Op::Remove { parent, name, kind }),
        4 => (id.clone(), name.clone(), id.clone(), name.clone())
            .prop_map(|(sp, sn, dp, dn)| Op::Rename { sp, sn, dp, dn }),
        1 => (id, 0u64..3).prop_map(|(ino, size)| Op::Truncate { ino, size }),
    ]
}

/// Replaces the selectors of a generated op with inode ids, given the model's state.
fn concretize(op: &Op, model: &Model) -> Op {
    let pick = |sel: u64, dirs_only: bool| -> u64 {
        let live: Vec<u64> = model
            .nodes
            .iter()
            .filter(|(_, n)| !dirs_only || n.kind == FileType::Dir)
            .map(|(id, _)| *id)
            .collect();
        if sel % 8 == 7 || live.is_empty() {
            sel % MAX_ID + 1
        } else {
            live[(sel / 8) as usize % live.len()]
        }
    };
    match op.clone() {
        Op::Create {
            parent,
            name,
            kind,
            how,
        } => Op::Create {
            parent: pick(parent, true),
            name,
            kind,
            how,
        },
        Op::Link { ino, parent, name } => Op::Link {
            ino: pick(ino, false),
            parent: pick(parent, true),
            name,
        },
        Op::Remove { parent, name, kind } => Op::Remove {
            parent: pick(parent, true),
            name,
            kind,
        },
        Op::Rename { sp, sn, dp, dn } => Op::Rename {
            sp: pick(sp, true),
            sn,
            dp: pick(dp, true),
            dn,
        },
        Op::Truncate { ino, size } => Op::Truncate {
            ino: pick(ino, false),
            size,
        },
    }
}

fn create_mode(how: u8) -> CreateMode {
    match how {
        0 => CreateMode::Unchecked,
        1 => CreateMode::Guarded,
        // Two verifiers, so both the retry and the conflicting case occur.
        v => CreateMode::Exclusive {
            verifier: u64::from(v % 2),
        },
    }
}

fn remove_kind(kind: u8) -> RemoveKind {
    match kind {
        0 => RemoveKind::Any,
        1 => RemoveKind::NotDir,
        _ => RemoveKind::Dir,
    }
}

fn command(op: &Op) -> Command {
    match op {
        Op::Create {
            parent,
            name,
            kind,
            how,
        } => Command::Create {
            fs: FS,
            parent: InodeId(*parent),
            name: NAMES[*name].into(),
            kind: match kind {
                FileType::File => NewInode::File,
                FileType::Dir => NewInode::Dir,
                FileType::Symlink => NewInode::Symlink { target: "t".into() },
                special @ (FileType::Fifo
                | FileType::Socket
                | FileType::CharDev
                | FileType::BlockDev) => NewInode::Special {
                    kind: *special,
                    major: 1,
                    minor: 2,
                },
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            how: create_mode(*how),
        },
        Op::Link { ino, parent, name } => Command::Link {
            fs: FS,
            ino: InodeId(*ino),
            new_parent: InodeId(*parent),
            new_name: NAMES[*name].into(),
        },
        Op::Remove { parent, name, kind } => Command::Remove {
            fs: FS,
            parent: InodeId(*parent),
            name: NAMES[*name].into(),
            kind: remove_kind(*kind),
        },
        Op::Rename { sp, sn, dp, dn } => Command::Rename {
            src_fs: FS,
            src_parent: InodeId(*sp),
            src_name: NAMES[*sn].into(),
            dst_fs: FS,
            dst_parent: InodeId(*dp),
            dst_name: NAMES[*dn].into(),
        },
        Op::Truncate { ino, size } => Command::SetAttr {
            fs: FS,
            ino: InodeId(*ino),
            attrs: SetAttrs {
                size: Some(*size),
                ..SetAttrs::default()
            },
            guard_ctime: None,
        },
    }
}

#[derive(Debug, Clone)]
struct Node {
    kind: FileType,
    nlink: u32,
    parent: u64,
    children: BTreeMap<String, u64>,
    verifier: Option<u64>,
}

/// The reference: outcomes are "ok", "unchanged" or an error variant name.
#[derive(Debug)]
struct Model {
    nodes: BTreeMap<u64, Node>,
    next: u64,
    /// The age of every entry `(parent, name)`: the log index that created the link, kept
    /// by a rename.
    ages: BTreeMap<(u64, String), u64>,
}

type Outcome = Result<&'static str, &'static str>;

impl Model {
    fn new() -> Self {
        let root = Node {
            kind: FileType::Dir,
            nlink: 2,
            parent: 1,
            children: BTreeMap::new(),
            verifier: None,
        };
        Model {
            nodes: BTreeMap::from([(1, root)]),
            next: 2,
            ages: BTreeMap::new(),
        }
    }

    fn dir(&self, id: u64) -> Result<&Node, &'static str> {
        let node = self.nodes.get(&id).ok_or("Stale")?;
        if node.kind != FileType::Dir {
            return Err("NotDir");
        }
        Ok(node)
    }

    fn below(&self, mut dir: u64, ancestor: u64) -> bool {
        loop {
            if dir == ancestor {
                return true;
            }
            if dir == 1 {
                return false;
            }
            dir = self.nodes[&dir].parent;
        }
    }

    /// The links of `id`, oldest first: `(age, parent, name)` sorts like the state's
    /// (age, then key order, which is parent then name bytes).
    fn links(&self, id: u64) -> Vec<(u64, String)> {
        let mut links: Vec<(u64, u64, String)> = self
            .nodes
            .iter()
            .flat_map(|(parent, n)| {
                n.children
                    .iter()
                    .filter(move |(_, child)| **child == id)
                    .map(move |(name, _)| {
                        (self.ages[&(*parent, name.clone())], *parent, name.clone())
                    })
            })
            .collect();
        links.sort();
        links.into_iter().map(|(_, p, n)| (p, n)).collect()
    }

    /// The primary path of `id`: its oldest link, then each directory's only link.
    fn path(&self, mut id: u64) -> Option<String> {
        let mut names = Vec::new();
        while id != 1 {
            let (parent, name) = self.links(id).into_iter().next()?;
            names.push(name);
            id = parent;
        }
        names.reverse();
        Some(names.join("/"))
    }

    fn unlink(&mut self, parent: u64, name: &str) {
        self.ages.remove(&(parent, name.to_string()));
        let id = self
            .nodes
            .get_mut(&parent)
            .unwrap()
            .children
            .remove(name)
            .unwrap();
        let node = self.nodes.get_mut(&id).unwrap();
        if node.kind == FileType::Dir {
            self.nodes.remove(&id);
            self.nodes.get_mut(&parent).unwrap().nlink -= 1;
        } else {
            node.nlink -= 1;
            if node.nlink == 0 {
                self.nodes.remove(&id);
            }
        }
    }

    /// Applies `op` as the log entry at `index` (the age of any link it creates).
    fn apply(&mut self, op: &Op, index: u64) -> Outcome {
        match op {
            Op::Create {
                parent,
                name,
                kind,
                how,
            } => {
                let name = NAMES[*name];
                let dir = self.dir(*parent)?;
                if let Some(existing) = dir.children.get(name) {
                    let e = &self.nodes[existing];
                    let reuse = match create_mode(*how) {
                        CreateMode::Unchecked => {
                            *kind == FileType::File && e.kind == FileType::File
                        }
                        CreateMode::Guarded => false,
                        CreateMode::Exclusive { verifier } => {
                            e.kind == *kind && e.verifier == Some(verifier)
                        }
                    };
                    return if reuse {
                        Ok("unchanged")
                    } else {
                        Err("Exists")
                    };
                }
                let id = self.next;
                self.next += 1;
                let verifier = match create_mode(*how) {
                    CreateMode::Exclusive { verifier } => Some(verifier),
                    _ => None,
                };
                let is_dir = *kind == FileType::Dir;
                self.nodes.insert(
                    id,
                    Node {
                        kind: *kind,
                        nlink: if is_dir { 2 } else { 1 },
                        parent: *parent,
                        children: BTreeMap::new(),
                        verifier,
                    },
                );
                let dir = self.nodes.get_mut(parent).unwrap();
                dir.children.insert(name.into(), id);
                if is_dir {
                    dir.nlink += 1;
                }
                self.ages.insert((*parent, name.into()), index);
                Ok("ok")
            }
            Op::Link { ino, parent, name } => {
                let name = NAMES[*name];
                let kind = self.nodes.get(ino).ok_or("Stale")?.kind;
                let dir = self.dir(*parent)?;
                if kind == FileType::Dir {
                    return Err("IsDir");
                }
                if dir.children.contains_key(name) {
                    return Err("Exists");
                }
                self.nodes
                    .get_mut(parent)
                    .unwrap()
                    .children
                    .insert(name.into(), *ino);
                self.nodes.get_mut(ino).unwrap().nlink += 1;
                self.ages.insert((*parent, name.into()), index);
                Ok("ok")
            }
            Op::Remove { parent, name, kind } => {
                let name = NAMES[*name];
                let dir = self.dir(*parent)?;
                let id = *dir.children.get(name).ok_or("NotFound")?;
                let target = &self.nodes[&id];
                let is_dir = target.kind == FileType::Dir;
                match (remove_kind(*kind), is_dir) {
                    (RemoveKind::NotDir, true) => return Err("IsDir"),
                    (RemoveKind::Dir, false) => return Err("NotDir"),
                    _ => {}
                }
                if is_dir && !target.children.is_empty() {
                    return Err("NotEmpty");
                }
                self.unlink(*parent, name);
                Ok("ok")
            }
            Op::Rename { sp, sn, dp, dn } => {
                let (sn, dn) = (NAMES[*sn], NAMES[*dn]);
                let src_dir = self.dir(*sp)?;
                let dst_dir = self.dir(*dp)?;
                let src = *src_dir.children.get(sn).ok_or("NotFound")?;
                let dst = dst_dir.children.get(dn).copied();
                if (sp == dp && sn == dn) || dst == Some(src) {
                    return Ok("unchanged");
                }
                let moving_dir = self.nodes[&src].kind == FileType::Dir;
                if moving_dir && self.below(*dp, src) {
                    return Err("Invalid");
                }
                if let Some(dst) = dst {
                    let target = &self.nodes[&dst];
                    match (moving_dir, target.kind == FileType::Dir) {
                        (true, false) => return Err("NotDir"),
                        (false, true) => return Err("IsDir"),
                        (true, true) if !target.children.is_empty() => return Err("NotEmpty"),
                        _ => {}
                    }
                    self.unlink(*dp, dn);
                }
                self.nodes.get_mut(sp).unwrap().children.remove(sn);
                self.nodes
                    .get_mut(dp)
                    .unwrap()
                    .children
                    .insert(dn.into(), src);
                let age = self.ages.remove(&(*sp, sn.to_string())).unwrap();
                self.ages.insert((*dp, dn.into()), age);
                if moving_dir && sp != dp {
                    self.nodes.get_mut(sp).unwrap().nlink -= 1;
                    self.nodes.get_mut(dp).unwrap().nlink += 1;
                    self.nodes.get_mut(&src).unwrap().parent = *dp;
                }
                Ok("ok")
            }
            Op::Truncate { ino, .. } => match self.nodes.get(ino).ok_or("Stale")?.kind {
                FileType::File => Ok("ok"),
                FileType::Dir => Err("IsDir"),
                FileType::Symlink
                | FileType::Fifo
                | FileType::Socket
                | FileType::CharDev
                | FileType::BlockDev => Err("Invalid"),
            },
        }
    }
}

fn outcome_of(result: &ApplyResult) -> String {
    match result {
        Ok(Reply::Changed {
            parent_before,
            parent_after,
            other_before,
            other_after,
            ..
        }) if parent_before == parent_after && other_before == other_after => "unchanged".into(),
        Ok(Reply::Renamed {
            src_before,
            src_after,
            dst_before,
            dst_after,
            ..
        }) if src_before == src_after && dst_before == dst_after => "unchanged".into(),
        Ok(_) => "ok".into(),
        Err(e) => error_name(e),
    }
}

fn check_state(h: &Harness, model: &Model) -> Result<(), TestCaseError> {
    for id in 1..=model.next + 1 {
        let real = h.getattr(FS, InodeId(id)).ok();
        let expected = model.nodes.get(&id);
        prop_assert_eq!(real.is_some(), expected.is_some(), "inode {} liveness", id);
        let (Some(real), Some(node)) = (real, expected) else {
            continue;
        };
        prop_assert_eq!(real.kind, node.kind, "inode {} kind", id);
        prop_assert_eq!(real.nlink, node.nlink, "inode {} nlink", id);
        let rdev = if node.kind.is_device() {
            (1, 2)
        } else {
            (0, 0)
        };
        prop_assert_eq!(real.rdev, rdev, "inode {} rdev", id);
        let links: Vec<(u64, String)> = match h.query(Query::Links {
            fs: FS,
            ino: InodeId(id),
        }) {
            Ok(QueryReply::Links(l)) => l.into_iter().map(|(p, n)| (p.0, n)).collect(),
            other => return Err(TestCaseError::fail(format!("Links of {id}: {other:?}"))),
        };
        prop_assert_eq!(&links, &model.links(id), "links of {}", id);
        let path = match h.query(Query::Path {
            fs: FS,
            ino: InodeId(id),
        }) {
            Ok(QueryReply::Path(p)) => p,
            other => return Err(TestCaseError::fail(format!("Path of {id}: {other:?}"))),
        };
        prop_assert_eq!(&path, &model.path(id), "path of {}", id);
        // The path walks from the root back to the inode.
        let path = path.unwrap_or_default();
        let mut at = InodeId::ROOT;
        for name in path.split('/').filter(|n| !n.is_empty()) {
            at = h
                .lookup(FS, at, name)
                .map_err(|e| TestCaseError::fail(format!("{path}: {e:?}")))?
                .id;
        }
        prop_assert_eq!(at, InodeId(id), "path {:?} leads elsewhere", path);
        if node.kind == FileType::Dir {
            prop_assert_eq!(
                real.parent,
                Some(InodeId(node.parent)),
                "inode {} parent",
                id
            );
            let entries: BTreeMap<String, u64> = h
                .read_dir_all(FS, InodeId(id), 2)
                .into_iter()
                .map(|e| (e.name, e.inode.id.0))
                .collect();
            prop_assert_eq!(&entries, &node.children, "entries of {}", id);
        }
    }
    let count = |table: Table| h.kv.rows.keys().filter(|(t, _)| *t == table).count();
    let entries: usize = model.nodes.values().map(|n| n.children.len()).sum();
    prop_assert_eq!(count(Table::Inodes), model.nodes.len());
    prop_assert_eq!(count(Table::Dirents), entries);
    prop_assert_eq!(count(Table::DirCookies), entries);
    // The link index (`LINK_OF`, 0x13 in keys.rs): one row per entry.
    let links =
        h.kv.rows
            .keys()
            .filter(|(t, k)| *t == Table::Meta && k.first() == Some(&0x13))
            .count();
    prop_assert_eq!(links, entries, "link index rows");
    Ok(())
}

/// Applies `proposals` in transactions of `batch` entries each, starting after `index`.
fn apply_batched(
    kv: &mut MemKv,
    mut index: u64,
    proposals: &[Proposal],
    batch: usize,
) -> Vec<ApplyResult> {
    let mut results = Vec::new();
    for chunk in proposals.chunks(batch) {
        let mut txn = Txn::new(&*kv);
        for p in chunk {
            index += 1;
            results.push(apply(&mut txn, index, p).expect("MemKv cannot fail"));
        }
        let writes = txn.into_writes();
        kv.apply(writes);
    }
    results
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_the_reference_model(ops in prop::collection::vec(op_strategy(), 1..60)) {
        let mut h = Harness::new();
        prop_assert_eq!(h.mkfs("main"), FS);
        let start = h.kv.clone();
        let mut model = Model::new();
        let mut proposals = Vec::new();
        let mut results = Vec::new();
        let mut seen = BTreeMap::<String, usize>::new();
        for op in &ops {
            let op = &concretize(op, &model);
            let expected = match model.apply(op, h.index + 1) {
                Ok(s) | Err(s) => s.to_string(),
            };
            let result = h.run(command(op));
            proposals.push(Proposal {
                client: h.client,
                seq: h.seq,
                ack_below: h.seq,
                now: h.now,
                command: command(op),
            });
            prop_assert_eq!(outcome_of(&result), expected.clone(), "{:?}", op);
            *seen.entry(expected).or_default() += 1;
            results.push(result);
            check_state(&h, &model)?;
        }

        // The same log on another replica: the same rows, byte for byte.
        let mut replica = start.clone();
        prop_assert_eq!(apply_batched(&mut replica, 1, &proposals, 1), results.clone());
        prop_assert!(replica == h.kv, "replicas diverged");
        // The same log, applied in batches of 7 entries per transaction.
        let mut batched = start;
        let batched_results = apply_batched(&mut batched, 1, &proposals, 7);
        prop_assert_eq!(batched_results, results);
        prop_assert!(batched == h.kv, "batched application diverged");
        if std::env::var_os("MODEL_STATS").is_some() {
            eprintln!("{seen:?}");
        }
    }
}

#[test]
fn the_model_sees_a_deep_rename_cycle() {
    // A hand-written sequence the generator rarely finds: a -> a/b -> a/b/c, then moving
    // a below c must fail, and moving c to the root then a below it must succeed.
    let ops = [
        Op::Create {
            parent: 1,
            name: 0,
            kind: FileType::Dir,
            how: 1,
        },
        Op::Create {
            parent: 2,
            name: 1,
            kind: FileType::Dir,
            how: 1,
        },
        Op::Create {
            parent: 3,
            name: 2,
            kind: FileType::Dir,
            how: 1,
        },
        Op::Rename {
            sp: 1,
            sn: 0,
            dp: 4,
            dn: 0,
        },
        Op::Rename {
            sp: 3,
            sn: 2,
            dp: 1,
            dn: 2,
        },
        Op::Rename {
            sp: 1,
            sn: 0,
            dp: 4,
            dn: 0,
        },
    ];
    let expected = ["ok", "ok", "ok", "Invalid", "ok", "ok"];
    let mut h = Harness::new();
    h.mkfs("main");
    let mut model = Model::new();
    for (op, want) in ops.iter().zip(expected) {
        let index = h.index + 1;
        let got = outcome_of(&h.run(command(op)));
        assert_eq!(got, want, "{op:?}");
        assert_eq!(
            model.apply(op, index).unwrap_or_else(|e| e),
            want,
            "model: {op:?}"
        );
    }
    check_state(&h, &model).expect("state matches");
}
