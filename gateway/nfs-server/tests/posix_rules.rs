//! POSIX rules the server enforces itself, whatever the client checked first: search
//! permission for LOOKUP, sticky directories, moving a directory needs write permission on
//! it, name limits, device nodes only for root, and root squash when configured.

mod common;

use bucketfs_nfs_server::{MemFs, ServerConfig};
use bucketfs_nfs_wire::nfs::attr::*;
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::SpecData;
use bucketfs_nfs_wire::nfs::{
    Attr, Bitmap, Component, Fattr, NfsArgOp, NfsFileType, NfsResOp, NfsStatus, StateId,
};
use bucketfs_nfs_wire::rpc::{AuthSys, Credential};
use common::*;

fn user(uid: u32) -> Credential {
    Credential::Sys(AuthSys {
        stamp: 3,
        machine_name: b"test".to_vec(),
        uid,
        gid: uid,
        gids: vec![],
    })
}

fn lookup(name: &str) -> NfsArgOp {
    NfsArgOp::Lookup(LookupArgs {
        objname: Component::new(name).unwrap(),
    })
}

fn mkdir(name: &str, mode: u32) -> NfsArgOp {
    create(CreateType::Directory, name, mode)
}

fn create(objtype: CreateType, name: &str, mode: u32) -> NfsArgOp {
    NfsArgOp::Create(CreateArgs {
        objtype,
        objname: Component::new(name).unwrap(),
        createattrs: Fattr::encode_attrs(&Bitmap::from_bits(&[FATTR4_MODE]), [Attr::Mode(mode)]),
    })
}

fn chown(uid: u32) -> NfsArgOp {
    NfsArgOp::SetAttr(SetAttrArgs {
        stateid: StateId::ANONYMOUS,
        obj_attributes: Fattr::encode_attrs(
            &Bitmap::from_bits(&[FATTR4_OWNER, FATTR4_OWNER_GROUP]),
            [
                Attr::Owner(uid.to_string()),
                Attr::OwnerGroup(uid.to_string()),
            ],
        ),
    })
}

fn remove(name: &str) -> NfsArgOp {
    NfsArgOp::Remove(RemoveArgs {
        target: Component::new(name).unwrap(),
    })
}

/// Creates `path` (a chain of directories under the root) as root, with `mode` on the last
/// one and owned by `owner`.
async fn setup_dir(c: &mut Client, name: &str, mode: u32, owner: u32) {
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, mkdir(name, mode), chown(owner)])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
}

#[tokio::test]
async fn lookup_needs_search_permission() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"search").await;
    setup_dir(&mut c, "private", 0o700, 1000).await;
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("private"),
            mkdir("inner", 0o755),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    c.cred = user(2000);
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("private"),
            lookup("inner"),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Access);
    c.cred = user(1000);
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("private"),
            lookup("inner"),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
}

#[tokio::test]
async fn sticky_directories_protect_other_users_entries() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"sticky").await;
    setup_dir(&mut c, "tmp", 0o1777, 0).await;
    // User 1000 makes an entry; user 2000 may not remove or rename it, its owner may.
    c.cred = user(1000);
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("tmp"),
            mkdir("mine", 0o755),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    c.cred = user(2000);
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, lookup("tmp"), remove("mine")])
        .await;
    assert_eq!(res.status, NfsStatus::Access);
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("tmp"),
            NfsArgOp::SaveFh,
            NfsArgOp::Rename(RenameArgs {
                oldname: Component::new("mine").unwrap(),
                newname: Component::new("stolen").unwrap(),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Access);
    // Its own entries it may remove.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("tmp"),
            mkdir("theirs", 0o755),
            NfsArgOp::PutRootFh,
            lookup("tmp"),
            remove("theirs"),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    c.cred = user(1000);
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, lookup("tmp"), remove("mine")])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
}

#[tokio::test]
async fn moving_a_directory_to_a_new_parent_needs_write_permission_on_it() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"mvdir").await;
    setup_dir(&mut c, "a", 0o777, 0).await;
    setup_dir(&mut c, "b", 0o777, 0).await;
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, lookup("a"), mkdir("ro", 0o555)])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    c.cred = user(2000);
    let rename = |from: &str, to: &str| {
        vec![
            NfsArgOp::PutRootFh,
            lookup(from),
            NfsArgOp::SaveFh,
            NfsArgOp::PutRootFh,
            lookup(to),
            NfsArgOp::Rename(RenameArgs {
                oldname: Component::new("ro").unwrap(),
                newname: Component::new("ro").unwrap(),
            }),
        ]
    };
    let res = c.seq_compound(rename("a", "b")).await;
    assert_eq!(res.status, NfsStatus::Access);
    // Within the same parent it is only a name change.
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("a"),
            NfsArgOp::SaveFh,
            NfsArgOp::Rename(RenameArgs {
                oldname: Component::new("ro").unwrap(),
                newname: Component::new("ro2").unwrap(),
            }),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
}

#[tokio::test]
async fn name_limits_and_device_nodes() {
    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"names").await;
    let long = "x".repeat(256);
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, mkdir(&long, 0o755)])
        .await;
    assert_eq!(res.status, NfsStatus::NameTooLong);
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, lookup(&long)])
        .await;
    assert_eq!(res.status, NfsStatus::NameTooLong);
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, mkdir(&"y".repeat(255), 0o755)])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);

    // Root makes a character device, a FIFO and a socket; GETATTR reports type and rawdev.
    let dev = CreateType::Char(SpecData { major: 1, minor: 3 });
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            create(dev.clone(), "null", 0o666),
            NfsArgOp::GetAttr(GetAttrArgs {
                attr_request: Bitmap::from_bits(&[FATTR4_TYPE, FATTR4_RAWDEV]),
            }),
            NfsArgOp::PutRootFh,
            create(CreateType::Fifo, "pipe", 0o644),
            NfsArgOp::PutRootFh,
            create(CreateType::Socket, "sock", 0o644),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let NfsResOp::GetAttr(Ok(fattr)) = &res.results[3] else {
        panic!("{res:?}")
    };
    assert_eq!(
        fattr.decode_attrs().unwrap(),
        vec![
            Attr::Type(NfsFileType::Char),
            Attr::RawDev(SpecData { major: 1, minor: 3 })
        ]
    );
    // An unprivileged user may make a FIFO in a directory it can write, not a device.
    setup_dir(&mut c, "open", 0o777, 0).await;
    c.cred = user(1000);
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("open"),
            create(dev, "d", 0o666),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Perm);
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            lookup("open"),
            create(CreateType::Fifo, "p", 0o644),
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
}

#[tokio::test]
async fn root_squash_maps_root_to_nobody_when_configured() {
    let config = ServerConfig {
        root_squash: true,
        ..ServerConfig::default()
    };
    let srv = start_with(MemFs::new(), config).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"squash").await;
    // The root directory is 0755 root:root, so a squashed root cannot write it.
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, mkdir("d", 0o755)])
        .await;
    assert_eq!(res.status, NfsStatus::Access);

    let srv = start(MemFs::new()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"nosquash").await;
    let res = c
        .seq_compound(vec![NfsArgOp::PutRootFh, mkdir("d", 0o755)])
        .await;
    assert_eq!(res.status, NfsStatus::Ok);
}
