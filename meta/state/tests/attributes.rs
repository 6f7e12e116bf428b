//! Change counters, timestamps and SETATTR details: every change stamps `change = index`
//! and `ctime = now` on what it touched, directories whose entries change get a new
//! `mtime`, and replies report the parents' counters before and after.

mod common;

use bucketfs_meta_state::command::{CreateMode, NewInode, RemoveKind};
use bucketfs_meta_state::types::{
    FsId, InodeId, ObjectLink, SetAttrs, SetTime, SyncState, Timestamp,
};
use bucketfs_meta_state::{Command, NsError, Query, QueryReply, Reply};
use common::{Harness, create, remove};

fn mk(h: &mut Harness, fs: FsId, parent: InodeId, name: &str, kind: NewInode) -> InodeId {
    match h.run(create(fs, parent, name.into(), kind, CreateMode::Guarded)) {
        Ok(Reply::Changed {
            inode: Some(inode), ..
        }) => inode.id,
        other => panic!("create {name}: {other:?}"),
    }
}

fn setattr(
    h: &mut Harness,
    fs: FsId,
    ino: InodeId,
    attrs: SetAttrs,
    guard: Option<Timestamp>,
) -> Result<Reply, NsError> {
    h.run(Command::SetAttr {
        fs,
        ino,
        attrs,
        guard_ctime: guard,
    })
}

#[test]
fn every_change_stamps_index_and_time() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let root0 = h.getattr(fs, InodeId::ROOT).unwrap();
    assert_eq!((root0.change, root0.generation), (h.index, h.index));

    let d = mk(&mut h, fs, InodeId::ROOT, "d", NewInode::Dir);
    let (idx, now) = (h.index, h.now);
    let root = h.getattr(fs, InodeId::ROOT).unwrap();
    let dir = h.getattr(fs, d).unwrap();
    assert_eq!((root.change, root.mtime, root.ctime), (idx, now, now));
    assert_eq!(
        (dir.change, dir.generation, dir.ctime, dir.mtime),
        (idx, idx, now, now)
    );

    let f = mk(&mut h, fs, d, "f", NewInode::File);
    // The root did not change.
    assert_eq!(h.getattr(fs, InodeId::ROOT).unwrap().change, idx);

    // Link: the file's ctime and the new parent's mtime move; counters report before/after.
    let before = h.getattr(fs, InodeId::ROOT).unwrap().change;
    let reply = h
        .run(Command::Link {
            fs,
            ino: f,
            new_parent: InodeId::ROOT,
            new_name: "g".into(),
        })
        .unwrap();
    let Reply::Changed {
        parent_before,
        parent_after,
        other_before,
        other_after,
        inode: Some(linked),
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!((parent_before, parent_after), (before, h.index));
    assert_eq!((other_before, other_after), (before, h.index));
    assert_eq!(
        (linked.nlink, linked.change, linked.ctime),
        (2, h.index, h.now)
    );
    assert_eq!(h.getattr(fs, InodeId::ROOT).unwrap().mtime, h.now);

    // Rename across directories reports both parents and stamps the moved inode.
    let (src_before, dst_before) = (
        h.getattr(fs, d).unwrap().change,
        h.getattr(fs, InodeId::ROOT).unwrap().change,
    );
    let reply = h
        .run(Command::Rename {
            src_fs: fs,
            src_parent: d,
            src_name: "f".into(),
            dst_fs: fs,
            dst_parent: InodeId::ROOT,
            dst_name: "h".into(),
        })
        .unwrap();
    let Reply::Renamed {
        src_before: sb,
        src_after: sa,
        dst_before: db,
        dst_after: da,
        moved,
        replaced: None,
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!((sb, sa, db, da), (src_before, h.index, dst_before, h.index));
    assert_eq!((moved.id, moved.change, moved.ctime), (f, h.index, h.now));
    for ino in [d, InodeId::ROOT] {
        let i = h.getattr(fs, ino).unwrap();
        assert_eq!((i.change, i.mtime, i.ctime), (h.index, h.now, h.now));
    }

    // Remove of one of two names: the file's ctime moves and it keeps one link.
    h.run(remove(fs, InodeId::ROOT, "g".into(), RemoveKind::Any))
        .unwrap();
    let file = h.getattr(fs, f).unwrap();
    assert_eq!((file.nlink, file.change, file.ctime), (1, h.index, h.now));
}

#[test]
fn change_counters_only_grow() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let f = mk(&mut h, fs, InodeId::ROOT, "f", NewInode::File);
    let mut last = h.getattr(fs, f).unwrap().change;
    for i in 0..5u32 {
        setattr(
            &mut h,
            fs,
            f,
            SetAttrs {
                mode: Some(0o600 + i),
                ..SetAttrs::default()
            },
            None,
        )
        .unwrap();
        let now = h.getattr(fs, f).unwrap().change;
        assert!(now > last);
        last = now;
    }
    // A refused command and a query change nothing.
    assert_eq!(
        h.run(create(
            fs,
            InodeId::ROOT,
            "f".into(),
            NewInode::File,
            CreateMode::Guarded
        )),
        Err(NsError::Exists)
    );
    assert_eq!(h.getattr(fs, f).unwrap().change, last);
}

#[test]
fn setattr_guard_times_and_sync_state() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let f = mk(&mut h, fs, InodeId::ROOT, "f", NewInode::File);
    let ctime = h.getattr(fs, f).unwrap().ctime;
    assert_eq!(
        setattr(
            &mut h,
            fs,
            f,
            SetAttrs::default(),
            Some(Timestamp::new(1, 2))
        ),
        Err(NsError::GuardMismatch)
    );
    let at = Timestamp::new(12_345, 678);
    let Reply::Inode(i) = setattr(
        &mut h,
        fs,
        f,
        SetAttrs {
            mode: Some(0o170_640),
            atime: Some(SetTime::At(at)),
            mtime: Some(SetTime::ServerTime),
            ..SetAttrs::default()
        },
        Some(ctime),
    )
    .unwrap() else {
        panic!("SetAttr answers with the inode")
    };
    assert_eq!(i.mode, 0o0640, "only permission bits are kept");
    assert_eq!(
        (i.atime, i.mtime, i.ctime, i.change),
        (at, h.now, h.now, h.index)
    );
    assert_eq!(
        i.sync,
        SyncState::Dirty {
            since_index: h.index
        }
    );
    let dirty_since = h.index;

    // Truncation moves mtime unless the request sets it; a second change keeps the
    // oldest unexported index.
    let Reply::Inode(i) = setattr(
        &mut h,
        fs,
        f,
        SetAttrs {
            size: Some(10),
            mtime: Some(SetTime::At(at)),
            ..SetAttrs::default()
        },
        None,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!((i.size, i.mtime), (10, at));
    assert_eq!(
        i.sync,
        SyncState::Dirty {
            since_index: dirty_since
        }
    );

    // CommitObject records the object and makes the file clean.
    let object = ObjectLink {
        key: "f".into(),
        version_id: Some("v1".into()),
        etag: "e".into(),
    };
    let Reply::Inode(i) = h
        .run(Command::CommitObject {
            fs,
            ino: f,
            size: 99,
            mtime: at,
            object: object.clone(),
            expect_change: None,
            data_changed: true,
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (i.size, i.mtime, i.sync.clone()),
        (99, at, SyncState::Clean)
    );
    assert_eq!(
        (i.object, i.change, i.ctime),
        (Some(object), h.index, h.now)
    );

    // Only atime: nothing exported changed, the file stays clean.
    let Reply::Inode(i) = setattr(
        &mut h,
        fs,
        f,
        SetAttrs {
            atime: Some(SetTime::ServerTime),
            ..SetAttrs::default()
        },
        None,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(i.sync, SyncState::Clean);
}

#[test]
fn missing_file_systems_and_bad_names() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let nofs = FsId(77);
    let no_fs = |r: Result<Reply, NsError>| matches!(r, Err(NsError::NoSuchFs(_)));
    assert!(no_fs(h.run(create(
        nofs,
        InodeId::ROOT,
        "x".into(),
        NewInode::File,
        CreateMode::Guarded
    ))));
    assert!(no_fs(h.run(remove(
        nofs,
        InodeId::ROOT,
        "x".into(),
        RemoveKind::Any
    ))));
    assert!(no_fs(setattr(
        &mut h,
        nofs,
        InodeId::ROOT,
        SetAttrs::default(),
        None
    )));
    assert!(no_fs(h.run(Command::Rename {
        src_fs: nofs,
        src_parent: InodeId::ROOT,
        src_name: "a".into(),
        dst_fs: nofs,
        dst_parent: InodeId::ROOT,
        dst_name: "b".into(),
    })));
    assert!(matches!(
        h.query(Query::GetAttr {
            fs: nofs,
            ino: InodeId::ROOT
        }),
        Err(NsError::NoSuchFs(_))
    ));
    assert!(matches!(
        h.query(Query::GetFs {
            name: "nope".into()
        }),
        Err(NsError::NoSuchFs(_))
    ));
    for bad in ["a/b", "a\0b", ""] {
        assert!(matches!(
            h.run(create(
                fs,
                InodeId::ROOT,
                bad.into(),
                NewInode::File,
                CreateMode::Guarded
            )),
            Err(NsError::InvalidName(_))
        ));
        assert!(matches!(
            h.query(Query::Lookup {
                fs,
                parent: InodeId::ROOT,
                name: bad.into()
            }),
            Err(NsError::InvalidName(_))
        ));
    }
    assert!(matches!(
        h.run(create(
            fs,
            InodeId::ROOT,
            "l".into(),
            NewInode::Symlink {
                target: String::new()
            },
            CreateMode::Guarded
        )),
        Err(NsError::Invalid(_))
    ));
    assert!(matches!(
        h.run(Command::CreateFs {
            name: String::new(),
            bucket: "b".into(),
            prefix: String::new()
        }),
        Err(NsError::Invalid(_))
    ));
}

#[test]
fn file_systems_are_listed_in_id_order() {
    let mut h = Harness::new();
    let a = h.mkfs("zeta");
    let b = h.mkfs("alpha");
    assert_eq!((a, b), (FsId(1), FsId(2)));
    let QueryReply::FsList(list) = h.query(Query::ListFs).unwrap() else {
        panic!()
    };
    let names: Vec<_> = list
        .iter()
        .map(|f| (f.id, f.name.as_str(), f.root))
        .collect();
    assert_eq!(
        names,
        [(a, "zeta", InodeId::ROOT), (b, "alpha", InodeId::ROOT)]
    );
    let QueryReply::Fs(info) = h
        .query(Query::GetFs {
            name: "alpha".into(),
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(info, list[1]);
    // Inode ids are counted per file system.
    let x = mk(&mut h, a, InodeId::ROOT, "x", NewInode::File);
    let y = mk(&mut h, b, InodeId::ROOT, "y", NewInode::File);
    assert_eq!((x, y), (InodeId(2), InodeId(2)));
    let QueryReply::Inode(root) = h
        .query(Query::LookupParent {
            fs: a,
            dir: InodeId::ROOT,
        })
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(root.id, InodeId::ROOT);
}

fn commit(
    h: &mut Harness,
    fs: FsId,
    ino: InodeId,
    size: u64,
    expect: Option<u64>,
) -> Result<Reply, NsError> {
    h.run(Command::CommitObject {
        fs,
        ino,
        size,
        mtime: Timestamp::new(5, 0),
        object: ObjectLink {
            key: format!("k{size}"),
            version_id: None,
            etag: format!("e{size}"),
        },
        expect_change: expect,
        data_changed: true,
    })
}

#[test]
fn commit_object_with_a_change_guard() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let f = mk(&mut h, fs, InodeId::ROOT, "f", NewInode::File);
    let read_at = h.getattr(fs, f).unwrap().change;

    // Someone else changes the file between our read and our commit.
    setattr(
        &mut h,
        fs,
        f,
        SetAttrs {
            mode: Some(0o600),
            ..SetAttrs::default()
        },
        None,
    )
    .unwrap();
    let current = h.getattr(fs, f).unwrap();
    assert!(current.change > read_at);
    let before = h.kv.clone();
    assert_eq!(
        commit(&mut h, fs, f, 10, Some(read_at)),
        Err(NsError::Changed {
            current: current.change
        })
    );
    // Refused, so nothing but the exactly-once rows moved.
    assert_eq!(h.getattr(fs, f).unwrap(), current);
    let inodes = |kv: &bucketfs_meta_state::kv::MemKv| {
        kv.rows
            .iter()
            .filter(|((t, _), _)| *t == bucketfs_meta_state::kv::Table::Inodes)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(inodes(&h.kv), inodes(&before));

    // With the counter just read it applies, with the unguarded effects.
    let Reply::Inode(i) = commit(&mut h, fs, f, 10, Some(current.change)).unwrap() else {
        panic!()
    };
    assert_eq!(
        (i.size, i.mtime, i.sync.clone(), i.change, i.ctime),
        (10, Timestamp::new(5, 0), SyncState::Clean, h.index, h.now)
    );
    assert_eq!(i.object.as_ref().map(|o| o.key.as_str()), Some("k10"));
    // The commit itself moved the counter: the same guard now fails, naming the new one.
    assert_eq!(
        commit(&mut h, fs, f, 11, Some(current.change)),
        Err(NsError::Changed { current: i.change })
    );
    // A guard from the future fails too; only equality passes.
    assert_eq!(
        commit(&mut h, fs, f, 11, Some(i.change + 1)),
        Err(NsError::Changed { current: i.change })
    );
    // Unguarded commits keep working whatever the counter.
    assert!(commit(&mut h, fs, f, 12, None).is_ok());
    assert_eq!(h.getattr(fs, f).unwrap().size, 12);

    // Kind errors come before the guard: a retry could never fix them.
    let d = mk(&mut h, fs, InodeId::ROOT, "d", NewInode::Dir);
    assert_eq!(commit(&mut h, fs, d, 1, Some(0)), Err(NsError::IsDir));
    assert_eq!(
        commit(&mut h, fs, InodeId(999), 1, Some(0)),
        Err(NsError::Stale)
    );
}

#[test]
fn commit_object_with_the_same_bytes_moves_neither_change_nor_ctime() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let f = mk(&mut h, fs, InodeId::ROOT, "f", NewInode::File);
    commit(&mut h, fs, f, 10, None).unwrap();
    // chmod marks the file dirty (its object's metadata is now old) and moves ctime.
    setattr(
        &mut h,
        fs,
        f,
        SetAttrs {
            mode: Some(0o600),
            ..SetAttrs::default()
        },
        None,
    )
    .unwrap();
    let before = h.getattr(fs, f).unwrap();
    assert!(matches!(before.sync, SyncState::Dirty { .. }));
    // The gateway exports the same bytes with the new metadata: a new version, a new link.
    let relink = |h: &mut Harness, size: u64| {
        h.run(Command::CommitObject {
            fs,
            ino: f,
            size,
            mtime: before.mtime,
            object: ObjectLink {
                key: "f".into(),
                version_id: Some("v2".into()),
                etag: "e2".into(),
            },
            expect_change: Some(before.change),
            data_changed: false,
        })
    };
    let Reply::Inode(after) = relink(&mut h, 10).unwrap() else {
        panic!()
    };
    assert_eq!(
        (after.change, after.ctime, after.sync.clone()),
        (before.change, before.ctime, SyncState::Clean)
    );
    assert_eq!(after.object.unwrap().version_id.as_deref(), Some("v2"));
    // Such a commit cannot change the size.
    assert!(matches!(relink(&mut h, 11), Err(NsError::Invalid(_))));
}

fn rename(h: &mut Harness, fs: FsId, sp: InodeId, sn: &str, dp: InodeId, dn: &str) -> Reply {
    h.run(Command::Rename {
        src_fs: fs,
        src_parent: sp,
        src_name: sn.into(),
        dst_fs: fs,
        dst_parent: dp,
        dst_name: dn.into(),
    })
    .unwrap_or_else(|e| panic!("rename {sn} -> {dn}: {e:?}"))
}

#[test]
fn rename_replies_with_both_parents_and_what_it_replaced() {
    let mut h = Harness::new();
    let fs = h.mkfs("main");
    let d = mk(&mut h, fs, InodeId::ROOT, "d", NewInode::Dir);
    let a = mk(&mut h, fs, InodeId::ROOT, "a", NewInode::File);
    let b = mk(&mut h, fs, d, "b", NewInode::File);
    h.run(Command::Link {
        fs,
        ino: b,
        new_parent: InodeId::ROOT,
        new_name: "b2".into(),
    })
    .unwrap();

    // Replacing one of two names: the target survives with one link.
    let (root0, d0) = (
        h.getattr(fs, InodeId::ROOT).unwrap().change,
        h.getattr(fs, d).unwrap().change,
    );
    let reply = rename(&mut h, fs, InodeId::ROOT, "a", d, "b");
    let Reply::Renamed {
        src_before,
        src_after,
        dst_before,
        dst_after,
        moved,
        replaced: Some(replaced),
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(
        (src_before, src_after, dst_before, dst_after),
        (root0, h.index, d0, h.index)
    );
    assert_eq!((moved.id, moved.change), (a, h.index));
    assert_eq!(
        (replaced.id, replaced.nlink, replaced.change),
        (b, 1, h.index)
    );
    assert_eq!(
        h.getattr(fs, b).unwrap(),
        replaced,
        "the reply is the stored inode"
    );

    // Replacing the last name: the reply shows the target deleted.
    let c = mk(&mut h, fs, InodeId::ROOT, "c", NewInode::File);
    let reply = rename(&mut h, fs, InodeId::ROOT, "c", InodeId::ROOT, "b2");
    let Reply::Renamed {
        src_before,
        dst_before,
        moved,
        replaced: Some(replaced),
        ..
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(src_before, dst_before, "one parent, one counter");
    assert_eq!((moved.id, replaced.id, replaced.nlink), (c, b, 0));
    assert_eq!(h.getattr(fs, b), Err(NsError::Stale));

    // A no-op rename: counters unchanged, the source as it is, nothing replaced.
    let d_now = h.getattr(fs, d).unwrap().change;
    let root_now = h.getattr(fs, InodeId::ROOT).unwrap().change;
    let reply = rename(&mut h, fs, d, "b", d, "b");
    assert_eq!(
        reply,
        Reply::Renamed {
            src_before: d_now,
            src_after: d_now,
            dst_before: d_now,
            dst_after: d_now,
            moved: h.getattr(fs, a).unwrap(),
            replaced: None,
        }
    );
    h.run(Command::Link {
        fs,
        ino: a,
        new_parent: InodeId::ROOT,
        new_name: "a2".into(),
    })
    .unwrap();
    let root_now = root_now.max(h.getattr(fs, InodeId::ROOT).unwrap().change);
    let reply = rename(&mut h, fs, d, "b", InodeId::ROOT, "a2");
    assert_eq!(
        reply,
        Reply::Renamed {
            src_before: d_now,
            src_after: d_now,
            dst_before: root_now,
            dst_after: root_now,
            moved: h.getattr(fs, a).unwrap(),
            replaced: None,
        },
        "two names of one inode: nothing happens"
    );
}
