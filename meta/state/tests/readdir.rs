//! READDIR: cookie order, paging, `eof`, and cookies that stay valid while the directory
//! changes between pages.

mod common;

use std::collections::BTreeSet;

use bucketfs_meta_state::command::{CreateMode, NewInode, RemoveKind};
use bucketfs_meta_state::types::{FsId, InodeId, ReadDirPage};
use bucketfs_meta_state::{NsError, Query, QueryReply};
use common::{Harness, create, remove};
use proptest::prelude::*;

fn page(h: &Harness, fs: FsId, dir: InodeId, after_cookie: u64, limit: u32) -> ReadDirPage {
    match h.query(Query::ReadDir {
        fs,
        dir,
        after_cookie,
        limit,
    }) {
        Ok(QueryReply::Page(p)) => p,
        other => panic!("ReadDir: {other:?}"),
    }
}

fn touch(h: &mut Harness, fs: FsId, name: &str) {
    h.run(create(
        fs,
        InodeId::ROOT,
        name.into(),
        NewInode::File,
        CreateMode::Guarded,
    ))
    .unwrap();
}

fn rm(h: &mut Harness, fs: FsId, name: &str) {
    h.run(remove(fs, InodeId::ROOT, name.into(), RemoveKind::Any))
        .unwrap();
}

fn names(p: &ReadDirPage) -> Vec<&str> {
    p.entries.iter().map(|e| e.name.as_str()).collect()
}

#[test]
fn pages_in_cookie_order_with_eof() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let empty = page(&h, fs, InodeId::ROOT, 0, 10);
    assert!(empty.entries.is_empty() && empty.eof);
    for n in ["c", "a", "b", "d"] {
        touch(&mut h, fs, n);
    }
    let p1 = page(&h, fs, InodeId::ROOT, 0, 2);
    assert_eq!(names(&p1), ["c", "a"]);
    assert!(!p1.eof);
    assert!(p1.entries[0].cookie > 2, "cookies 0, 1 and 2 are reserved");
    let p2 = page(&h, fs, InodeId::ROOT, p1.entries[1].cookie, 2);
    assert_eq!(names(&p2), ["b", "d"]);
    assert!(p2.eof, "a page that reaches the last entry says so");
    let zero = page(&h, fs, InodeId::ROOT, 0, 0);
    assert!(zero.entries.is_empty() && !zero.eof);
    let past = page(&h, fs, InodeId::ROOT, u64::MAX, 10);
    assert!(past.entries.is_empty() && past.eof);

    // Entries carry the full inode, and the page the directory's change counter.
    let root = h.getattr(fs, InodeId::ROOT).unwrap();
    assert_eq!(p2.dir_change, root.change);
    for e in p1.entries.iter().chain(&p2.entries) {
        assert_eq!(Ok(e.inode.clone()), h.getattr(fs, e.inode.id));
    }
}

#[test]
fn readdir_needs_a_live_directory() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    touch(&mut h, fs, "f");
    let f = h.lookup(fs, InodeId::ROOT, "f").unwrap().id;
    let q = |dir| Query::ReadDir {
        fs,
        dir,
        after_cookie: 0,
        limit: 5,
    };
    assert_eq!(h.query(q(f)), Err(NsError::NotDir));
    assert_eq!(h.query(q(InodeId(99))), Err(NsError::Stale));
    assert!(matches!(
        h.query(Query::ReadDir {
            fs: FsId(42),
            dir: InodeId::ROOT,
            after_cookie: 0,
            limit: 5
        }),
        Err(NsError::NoSuchFs(_))
    ));
}

#[test]
fn a_cookie_survives_changes_between_pages() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    for n in ["a", "b", "c", "d", "e"] {
        touch(&mut h, fs, n);
    }
    let p1 = page(&h, fs, InodeId::ROOT, 0, 2);
    assert_eq!(names(&p1), ["a", "b"]);
    let cookie = p1.entries[1].cookie;
    rm(&mut h, fs, "b"); // the entry the cookie came from
    rm(&mut h, fs, "d"); // one not read yet
    touch(&mut h, fs, "f"); // a new one
    touch(&mut h, fs, "a2");
    let p2 = page(&h, fs, InodeId::ROOT, cookie, 10);
    assert_eq!(names(&p2), ["c", "e", "f", "a2"]);
    assert!(p2.eof);
    assert_ne!(p2.dir_change, p1.dir_change);
}

proptest! {
    /// Reading a directory page by page while other requests add and remove entries: every
    /// entry that exists for the whole read is returned exactly once, no entry is returned
    /// twice, and a removed entry is never returned after its removal.
    #[test]
    fn paging_under_concurrent_changes(
        initial in 0usize..12,
        steps in prop::collection::vec((1u32..4, prop::collection::vec((any::<bool>(), 0usize..16), 0..3)), 1..20),
    ) {
        let mut h = Harness::new();
        let fs = h.mkfs("main");
        let mut live: BTreeSet<String> = BTreeSet::new();
        for i in 0..initial {
            let n = format!("n{i}");
            touch(&mut h, fs, &n);
            live.insert(n);
        }
        let stable_candidates = live.clone();
        let mut touched: BTreeSet<String> = BTreeSet::new();
        let mut removed: BTreeSet<String> = BTreeSet::new();
        let mut seen: Vec<String> = Vec::new();
        let mut cookie = 0;
        let mut next_name = initial;
        for (limit, changes) in steps {
            let p = page(&h, fs, InodeId::ROOT, cookie, limit);
            for e in &p.entries {
                prop_assert!(e.cookie > cookie);
                prop_assert!(!removed.contains(&e.name), "{} returned after removal", e.name);
                seen.push(e.name.clone());
                cookie = e.cookie;
            }
            if p.eof {
                break;
            }
            for (add, pick) in changes {
                if add || live.is_empty() {
                    let n = format!("n{next_name}");
                    next_name += 1;
                    touch(&mut h, fs, &n);
                    live.insert(n);
                } else {
                    let n = live.iter().nth(pick % live.len()).unwrap().clone();
                    rm(&mut h, fs, &n);
                    live.remove(&n);
                    removed.insert(n.clone());
                    touched.insert(n);
                }
            }
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        prop_assert_eq!(unique.len(), seen.len(), "duplicates in {:?}", seen);
        // Finish the read and check that entries alive throughout were all returned.
        let rest = h.read_dir_all(fs, InodeId::ROOT, 3);
        for e in rest.iter().filter(|e| e.cookie > cookie) {
            seen.push(e.name.clone());
        }
        for n in stable_candidates.difference(&touched) {
            prop_assert!(seen.contains(n), "{} never returned", n);
        }
    }
}
