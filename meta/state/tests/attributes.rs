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
    let Reply::Changed {
        parent_before,
        parent_after,
        other_before,
        other_after,
        inode: Some(moved),
    } = reply
    else {
        panic!("{reply:?}")
    };
    assert_eq!(
        (parent_before, parent_after, other_before, other_after),
        (src_before, h.index, dst_before, h.index)
    );
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
