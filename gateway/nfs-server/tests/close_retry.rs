//! A CLOSE the file system cannot finish yet (its export answers DELAY) leaves the open in
//! place, so the client's retry of the same CLOSE succeeds rather than meeting BAD_STATEID.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use bucketfs_nfs_server::{
    AttrUpdate, CreateHow as FsHow, Created, DirPage, FileAttrs, FileSystem, FsResult, FsStats,
    MemFs, NewAttrs, NewNode, ServerConfig, Stability,
};
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::Opaque;
use bucketfs_nfs_wire::nfs::{
    ChangeInfo, Component, NfsArgOp, NfsResOp, NfsStatus, SetAttrs, StateId, StateOwner,
};
use common::*;

/// MemFs whose `close` answers DELAY the first `failures` times.
struct FlakyClose(MemFs, AtomicU32);

impl FileSystem for FlakyClose {
    fn root(&self) -> Vec<u8> {
        self.0.root()
    }
    fn fsid(&self) -> (u64, u64) {
        self.0.fsid()
    }
    async fn statfs(&self) -> FsResult<FsStats> {
        self.0.statfs().await
    }
    async fn getattr(&self, fh: &[u8]) -> FsResult<FileAttrs> {
        self.0.getattr(fh).await
    }
    async fn lookup(&self, dir: &[u8], name: &str) -> FsResult<(Vec<u8>, FileAttrs)> {
        self.0.lookup(dir, name).await
    }
    async fn lookupp(&self, dir: &[u8]) -> FsResult<Vec<u8>> {
        self.0.lookupp(dir).await
    }
    async fn readdir(&self, dir: &[u8], cookie: u64, max: usize) -> FsResult<DirPage> {
        self.0.readdir(dir, cookie, max).await
    }
    async fn readlink(&self, fh: &[u8]) -> FsResult<Vec<u8>> {
        self.0.readlink(fh).await
    }
    async fn create(
        &self,
        dir: &[u8],
        name: &str,
        node: NewNode,
        attrs: NewAttrs,
        how: FsHow,
    ) -> FsResult<Created> {
        self.0.create(dir, name, node, attrs, how).await
    }
    async fn remove(&self, dir: &[u8], name: &str) -> FsResult<ChangeInfo> {
        self.0.remove(dir, name).await
    }
    async fn rename(
        &self,
        src_dir: &[u8],
        src: &str,
        dst_dir: &[u8],
        dst: &str,
    ) -> FsResult<(ChangeInfo, ChangeInfo)> {
        self.0.rename(src_dir, src, dst_dir, dst).await
    }
    async fn link(&self, file: &[u8], dir: &[u8], name: &str) -> FsResult<ChangeInfo> {
        self.0.link(file, dir, name).await
    }
    async fn setattr(&self, fh: &[u8], update: AttrUpdate) -> FsResult<()> {
        self.0.setattr(fh, update).await
    }
    async fn read(&self, fh: &[u8], offset: u64, count: u32) -> FsResult<(Vec<u8>, bool)> {
        self.0.read(fh, offset, count).await
    }
    async fn write(
        &self,
        fh: &[u8],
        offset: u64,
        data: &[u8],
        stable: bool,
    ) -> FsResult<Stability> {
        self.0.write(fh, offset, data, stable).await
    }
    async fn commit(&self, fh: &[u8]) -> FsResult<()> {
        self.0.commit(fh).await
    }
    async fn close(&self, fh: &[u8]) -> FsResult<()> {
        if self
            .1
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(NfsStatus::Delay);
        }
        self.0.close(fh).await
    }
}

#[tokio::test]
async fn a_delayed_close_keeps_the_open_for_the_retry() {
    let srv = start_with(
        FlakyClose(MemFs::new(), AtomicU32::new(1)),
        ServerConfig::default(),
    )
    .await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"flaky").await;
    let clientid = c.clientid;
    let res = c
        .seq_compound(vec![
            NfsArgOp::PutRootFh,
            NfsArgOp::Open(OpenArgs {
                seqid: 0,
                share_access: OPEN4_SHARE_ACCESS_BOTH,
                share_deny: 0,
                owner: StateOwner {
                    clientid,
                    owner: Opaque(b"o".to_vec()),
                },
                openhow: OpenFlag::Create(CreateHow::Unchecked(SetAttrs::default().to_fattr())),
                claim: OpenClaim::Null(Component::new("f").unwrap()),
            }),
            NfsArgOp::GetFh,
        ])
        .await;
    assert_eq!(res.status, NfsStatus::Ok, "{res:?}");
    let NfsResOp::Open(Ok(open)) = &res.results[2] else {
        panic!("{res:?}")
    };
    let NfsResOp::GetFh(Ok(fh)) = &res.results[3] else {
        panic!("{res:?}")
    };
    let close = |stateid: StateId| {
        vec![
            NfsArgOp::PutFh(PutFhArgs { object: fh.clone() }),
            NfsArgOp::Close(CloseArgs {
                seqid: 0,
                open_stateid: stateid,
            }),
        ]
    };
    let first = c.seq_compound(close(open.stateid.clone())).await;
    assert_eq!(first.status, NfsStatus::Delay);
    let retry = c.seq_compound(close(open.stateid.clone())).await;
    assert_eq!(retry.status, NfsStatus::Ok, "{retry:?}");
    // Now the open is gone.
    let again = c.seq_compound(close(open.stateid.clone())).await;
    assert_eq!(again.status, NfsStatus::BadStateId);
}
