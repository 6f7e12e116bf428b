//! Calls on one connection run concurrently, and a reply goes out as soon as its call is
//! done: a blocked call holds back neither the execution nor the reply of the next one.

mod common;

use std::time::Duration;

use bucketfs_nfs_server::{
    AttrUpdate, CreateHow, Created, DirPage, FileAttrs, FileSystem, FsResult, FsStats, MemFs,
    NewAttrs, NewNode, ServerConfig, Stability,
};
use bucketfs_nfs_wire::encode_record;
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::SessionId;
use bucketfs_nfs_wire::nfs::{ChangeInfo, Component, NfsArgOp, NfsStatus};
use common::*;

/// MemFs whose lookup of "slow" only answers once "go" exists in the same directory.
struct GatedFs(MemFs);

impl FileSystem for GatedFs {
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
        if name == "slow" {
            while self.0.lookup(dir, "go").await.is_err() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            return self.0.lookup(dir, "go").await;
        }
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
        how: CreateHow,
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
        self.0.close(fh).await
    }
}

fn seq(session: SessionId, slotid: u32) -> NfsArgOp {
    NfsArgOp::Sequence(SequenceArgs {
        sessionid: session,
        sequenceid: 1,
        slotid,
        highest_slotid: 1,
        cachethis: true,
    })
}

#[tokio::test]
async fn a_blocked_call_does_not_block_the_next_one() {
    let srv = start_with(GatedFs(MemFs::new()), ServerConfig::default()).await;
    let mut c = Client::connect(srv.addr).await;
    c.establish(b"conc").await;
    let session = c.session.unwrap();
    let slow = c.compound_message(
        1000,
        1,
        vec![
            seq(session, 0),
            NfsArgOp::PutRootFh,
            NfsArgOp::Lookup(LookupArgs {
                objname: Component::new("slow").unwrap(),
            }),
        ],
    );
    let unblock = c.compound_message(
        1001,
        1,
        vec![
            seq(session, 1),
            NfsArgOp::PutRootFh,
            NfsArgOp::Create(CreateArgs {
                objtype: CreateType::Directory,
                objname: Component::new("go").unwrap(),
                createattrs: Default::default(),
            }),
        ],
    );
    let mut bytes = encode_record(&slow);
    bytes.extend_from_slice(&encode_record(&unblock));
    c.send_raw(&bytes).await;
    // Executed one after the other, the first call would wait forever for the second. The
    // second is done first, so its reply comes first.
    let first = decode_reply(c.recv().await.unwrap());
    let second = decode_reply(c.recv().await.unwrap());
    assert_eq!((first.xid, second.xid), (1001, 1000));
    assert_eq!(first.res.unwrap().status, NfsStatus::Ok);
    assert_eq!(second.res.unwrap().status, NfsStatus::Ok);
}
