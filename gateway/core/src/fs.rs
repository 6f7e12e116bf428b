//! [`GatewayFs`]: the NFS server's [`FileSystem`] on the metadata cluster and the bucket.
//!
//! Namespace operations are one meta command each (atomic and linearizable there); their S3
//! side (markers, symlink objects, moves, deletes) follows once meta has committed, see
//! `export`. File bytes go through `data`.

use std::sync::Arc;

use bucketfs_block_cache::{BlockCache, LocalDisk};
use bucketfs_meta_client::{MetaClient, ReadConsistency};
use bucketfs_meta_state::command::{CreateMode, NewInode, RemoveKind};
use bucketfs_meta_state::types::{FileType, FsId, FsInfo, Inode, InodeId, SetAttrs, SetTime};
use bucketfs_meta_state::{Command, Query, QueryReply, Reply};
use bucketfs_nfs_server::{
    AttrUpdate, CreateHow, Created, DirEntryInfo, DirPage, FileAttrs, FileSystem, FsResult,
    FsStats, NewAttrs, NewNode, Stability, TimeUpdate,
};
use bucketfs_nfs_wire::nfs::{ChangeInfo, NfsFileType, NfsStatus, NfsTime};
use bucketfs_object_store::ObjectStore;
use bucketfs_runtime::Clock;

use crate::context::{Context, DataConfig, unexpected};
use crate::data::{Fetches, FileTable};
use crate::handle::Handle;
use crate::metrics;

/// The major half of every fsid this gateway reports ("bucket"); the minor half is the file
/// system id, so two file systems never look like one to a client.
const FSID_MAJOR: u64 = 0x6275_636b_6574;

/// What statfs(2) shows: 1 PiB and 2^40 inodes, free (see `statfs`).
const NOMINAL_BYTES: u64 = 1 << 50;
const NOMINAL_FILES: u64 = 1 << 40;

/// The NFS file system of one bucketfs file system. Cheap to clone.
pub struct GatewayFs<D: LocalDisk> {
    ctx: Arc<Context<D>>,
}

impl<D: LocalDisk> Clone for GatewayFs<D> {
    fn clone(&self) -> Self {
        Self {
            ctx: Arc::clone(&self.ctx),
        }
    }
}

/// How to reach the pieces a [`GatewayFs`] is built from.
pub struct FsParts<D: LocalDisk> {
    pub meta: MetaClient,
    pub store: Arc<dyn ObjectStore>,
    pub cache: Arc<BlockCache<D>>,
    pub clock: Arc<dyn Clock>,
    pub config: DataConfig,
}

impl<D: LocalDisk> GatewayFs<D> {
    /// Serves the file system `info` (its root must exist in meta).
    pub async fn open(parts: FsParts<D>, info: &FsInfo) -> Result<Self, NfsStatus> {
        let FsParts {
            meta,
            store,
            cache,
            clock,
            config,
        } = parts;
        let root_inode = match meta
            .read(
                Query::GetAttr {
                    fs: info.id,
                    ino: info.root,
                },
                ReadConsistency::Linearizable,
            )
            .await
        {
            Ok(QueryReply::Inode(inode)) => inode,
            Ok(other) => return Err(unexpected("GetAttr", &other)),
            Err(e) => return Err(crate::errors::meta_status(&e)),
        };
        let ctx = Context {
            meta,
            store,
            cache,
            clock,
            fs: info.id,
            prefix: crate::keys::normalize_prefix(&info.prefix),
            root: Handle::of(info.id, &root_inode),
            config,
            consistency: ReadConsistency::Linearizable,
            files: FileTable::default(),
            fetches: Arc::new(Fetches::default()),
        };
        Ok(Self { ctx: Arc::new(ctx) })
    }

    pub fn fs_id(&self) -> FsId {
        self.ctx.fs
    }

    /// Makes every uncommitted write durable (an orderly shutdown).
    pub async fn flush_all(&self) -> Result<(), NfsStatus> {
        self.ctx.flush_everything().await
    }

    fn attrs(&self, inode: &Inode) -> FileAttrs {
        let mut a = to_attrs(inode);
        if let Some((size, mtime)) = self.ctx.files.overlay(inode.id) {
            a.size = a.size.max(size);
            a.space_used = a.size;
            a.mtime = nfs_time(mtime);
            if mtime > inode.ctime {
                a.ctime = nfs_time(mtime);
            }
        }
        a
    }

    fn handle_of(&self, inode: &Inode) -> Vec<u8> {
        Handle::of(self.ctx.fs, inode).encode()
    }

    async fn changed(&self, command: Command) -> FsResult<(ChangeInfo, Option<Inode>)> {
        match self.ctx.write(command).await? {
            Reply::Changed {
                parent_before,
                parent_after,
                inode,
                ..
            } => Ok((
                ChangeInfo {
                    atomic: true,
                    before: parent_before,
                    after: parent_after,
                },
                inode,
            )),
            other => Err(unexpected("namespace command", &other)),
        }
    }

    async fn lookup_inode(&self, dir: InodeId, name: &str) -> FsResult<Inode> {
        match self
            .ctx
            .query(Query::Lookup {
                fs: self.ctx.fs,
                parent: dir,
                name: name.to_owned(),
            })
            .await?
        {
            QueryReply::Inode(inode) => Ok(inode),
            other => Err(unexpected("Lookup", &other)),
        }
    }

    /// The path of an entry of `dir` named `name` (whose own path is `dir_path`).
    fn child_path(dir_path: &str, name: &str) -> String {
        if dir_path.is_empty() {
            name.to_owned()
        } else {
            format!("{dir_path}/{name}")
        }
    }

    /// SETATTR of a regular file: size changes and dirty data go through a new object
    /// version; other attribute changes reach S3 as a copy with new metadata.
    async fn setattr_file(&self, h: &Handle, update: AttrUpdate, set: SetAttrs) -> FsResult<()> {
        let ctx = &self.ctx;
        let entry = ctx.files.entry(h.ino);
        let mut state = entry.state.lock().await;
        // Uncommitted writes come first: a truncation applies on top of them, and an explicit
        // mtime must not be replaced by the time of an earlier write.
        ctx.flush_locked(h, &entry, &mut state).await?;
        let others = SetAttrs { size: None, ..set };
        if others != SetAttrs::default() {
            self.set_attrs(h, others).await?;
        }
        if let Some(size) = update.size {
            let inode = ctx.inode(h).await?;
            let mtime = match &update.mtime {
                Some(TimeUpdate::Set(t)) => from_nfs_time(t),
                // truncate(2) moves mtime, unless the call set it explicitly.
                _ if size != inode.size => ctx.now(),
                _ => inode.mtime,
            };
            if size != inode.size || mtime != inode.mtime {
                ctx.truncate(h, size, mtime).await?;
            }
        } else {
            ctx.export_file(h).await?;
        }
        Ok(())
    }

    async fn set_attrs(&self, h: &Handle, attrs: SetAttrs) -> FsResult<Inode> {
        match self
            .ctx
            .write(Command::SetAttr {
                fs: self.ctx.fs,
                ino: h.ino,
                attrs,
                guard_ctime: None,
            })
            .await?
        {
            Reply::Inode(inode) => Ok(inode),
            other => Err(unexpected("SetAttr", &other)),
        }
    }
}

impl<D: LocalDisk> FileSystem for GatewayFs<D> {
    fn root(&self) -> Vec<u8> {
        self.ctx.root.encode()
    }

    fn fsid(&self) -> (u64, u64) {
        (FSID_MAJOR, self.ctx.fs.0)
    }

    async fn statfs(&self) -> FsResult<FsStats> {
        // An S3 bucket has no capacity to run out of; report a nominal, constant size so
        // that df(1) and tools that check free space before writing are content.
        Ok(FsStats {
            space_total: NOMINAL_BYTES,
            space_free: NOMINAL_BYTES,
            space_avail: NOMINAL_BYTES,
            files_total: NOMINAL_FILES,
            files_free: NOMINAL_FILES,
            files_avail: NOMINAL_FILES,
        })
    }

    async fn getattr(&self, fh: &[u8]) -> FsResult<FileAttrs> {
        let h = Handle::decode(fh)?;
        let inode = self.ctx.inode(&h).await?;
        Ok(self.attrs(&inode))
    }

    async fn lookup(&self, dir: &[u8], name: &str) -> FsResult<(Vec<u8>, FileAttrs)> {
        let h = Handle::decode(dir)?;
        let inode = self.lookup_inode(h.ino, name).await?;
        Ok((self.handle_of(&inode), self.attrs(&inode)))
    }

    async fn lookupp(&self, dir: &[u8]) -> FsResult<Vec<u8>> {
        let h = Handle::decode(dir)?;
        if h.ino == InodeId::ROOT {
            return Err(NfsStatus::NoEnt);
        }
        match self
            .ctx
            .query(Query::LookupParent {
                fs: self.ctx.fs,
                dir: h.ino,
            })
            .await?
        {
            QueryReply::Inode(inode) => Ok(self.handle_of(&inode)),
            other => Err(unexpected("LookupParent", &other)),
        }
    }

    async fn readdir(&self, dir: &[u8], cookie: u64, max: usize) -> FsResult<DirPage> {
        let h = Handle::decode(dir)?;
        let page = match self
            .ctx
            .query(Query::ReadDir {
                fs: self.ctx.fs,
                dir: h.ino,
                after_cookie: cookie,
                limit: u32::try_from(max).unwrap_or(u32::MAX),
            })
            .await?
        {
            QueryReply::Page(page) => page,
            other => return Err(unexpected("ReadDir", &other)),
        };
        Ok(DirPage {
            entries: page
                .entries
                .iter()
                .map(|e| DirEntryInfo {
                    cookie: e.cookie,
                    name: e.name.clone(),
                    fh: self.handle_of(&e.inode),
                    attrs: Ok(self.attrs(&e.inode)),
                })
                .collect(),
            eof: page.eof,
        })
    }

    async fn readlink(&self, fh: &[u8]) -> FsResult<Vec<u8>> {
        let h = Handle::decode(fh)?;
        match self
            .ctx
            .query(Query::ReadLink {
                fs: self.ctx.fs,
                ino: h.ino,
            })
            .await?
        {
            QueryReply::Target(t) => Ok(t.into_bytes()),
            other => Err(unexpected("ReadLink", &other)),
        }
    }

    async fn create(
        &self,
        dir: &[u8],
        name: &str,
        node: NewNode,
        attrs: NewAttrs,
        how: CreateHow,
    ) -> FsResult<Created> {
        let h = Handle::decode(dir)?;
        let kind = match node {
            NewNode::Directory => NewInode::Dir,
            NewNode::File => NewInode::File,
            NewNode::Symlink(target) => NewInode::Symlink {
                // Linux sends the target as given to symlink(2): bytes, UTF-8 in practice.
                target: String::from_utf8(target).map_err(|_| NfsStatus::Inval)?,
            },
            NewNode::Special { ftype, rawdev } => NewInode::Special {
                kind: match ftype {
                    NfsFileType::Fifo => FileType::Fifo,
                    NfsFileType::Socket => FileType::Socket,
                    NfsFileType::Char => FileType::CharDev,
                    NfsFileType::Block => FileType::BlockDev,
                    _ => return Err(NfsStatus::BadType),
                },
                major: rawdev.0,
                minor: rawdev.1,
            },
        };
        let how = match how {
            CreateHow::Unchecked => CreateMode::Unchecked,
            CreateHow::Guarded => CreateMode::Guarded,
            CreateHow::Exclusive(v) => CreateMode::Exclusive {
                verifier: u64::from_be_bytes(v),
            },
        };
        let (cinfo, inode) = self
            .changed(Command::Create {
                fs: self.ctx.fs,
                parent: h.ino,
                name: name.to_owned(),
                kind,
                mode: attrs.mode,
                uid: attrs.uid,
                gid: attrs.gid,
                how,
            })
            .await?;
        let inode = inode.ok_or_else(|| unexpected("Create", &"no inode"))?;
        let existed = cinfo.before == cinfo.after;
        if !existed && matches!(inode.kind, FileType::Dir | FileType::Symlink) {
            match self.ctx.path(inode.id).await {
                Ok(Some(path)) => self.ctx.export_entry(&inode, &path).await,
                Ok(None) => {}
                Err(status) => {
                    tracing::warn!(?status, "no path for a new entry; not exported");
                    metrics::export_failure("marker");
                }
            }
        }
        Ok(Created {
            fh: self.handle_of(&inode),
            cinfo,
            existed,
        })
    }

    async fn remove(&self, dir: &[u8], name: &str) -> FsResult<ChangeInfo> {
        let h = Handle::decode(dir)?;
        let ctx = &self.ctx;
        let target = self.lookup_inode(h.ino, name).await?;
        // The key the name's object lives under, computed before the name goes.
        let old_key = match target.kind {
            FileType::File => target.object.as_ref().map(|l| l.key.clone()),
            FileType::Dir => ctx
                .path(target.id)
                .await?
                .and_then(|p| crate::keys::marker_key(&ctx.prefix, &p)),
            FileType::Symlink => ctx.key_of(target.id).await?,
            _ => None,
        };
        let (cinfo, after) = self
            .changed(Command::Remove {
                fs: ctx.fs,
                parent: h.ino,
                name: name.to_owned(),
                kind: RemoveKind::Any,
            })
            .await?;
        let gone = after.as_ref().is_none_or(|i| i.nlink == 0) || target.kind == FileType::Dir;
        if gone {
            if let Some(key) = old_key {
                ctx.delete_key(&key).await;
            }
            let (fs, ino) = (ctx.fs.0, target.id.0);
            let cache = Arc::clone(&ctx.cache);
            let _ = tokio::task::spawn_blocking(move || cache.invalidate(fs, ino)).await;
            ctx.files.forget(target.id);
        } else if target.kind == FileType::File {
            // Another name remains; if the object was under this one it moves.
            ctx.relocate_file(target.id).await;
        } else if target.kind == FileType::Symlink
            && let (Some(old), Ok(Some(path))) = (old_key, ctx.path(target.id).await)
            && let Some(link) = &after
        {
            let new_key = crate::keys::object_key(&ctx.prefix, &path);
            if new_key != old {
                ctx.put_symlink(link, &path).await;
                ctx.delete_key(&old).await;
            }
        }
        Ok(cinfo)
    }

    async fn rename(
        &self,
        src_dir: &[u8],
        src: &str,
        dst_dir: &[u8],
        dst: &str,
    ) -> FsResult<(ChangeInfo, ChangeInfo)> {
        let (sh, dh) = (Handle::decode(src_dir)?, Handle::decode(dst_dir)?);
        let ctx = &self.ctx;
        let src_dir_path = ctx.path(sh.ino).await?.unwrap_or_default();
        let old_path = Self::child_path(&src_dir_path, src);
        let reply = ctx
            .write(Command::Rename {
                src_fs: ctx.fs,
                src_parent: sh.ino,
                src_name: src.to_owned(),
                dst_fs: ctx.fs,
                dst_parent: dh.ino,
                dst_name: dst.to_owned(),
            })
            .await?;
        let Reply::Renamed {
            src_before,
            src_after,
            dst_before,
            dst_after,
            moved,
            replaced,
        } = reply
        else {
            return Err(unexpected("Rename", &reply));
        };
        let cinfo = |before, after| ChangeInfo {
            atomic: true,
            before,
            after,
        };
        let result = (cinfo(src_before, src_after), cinfo(dst_before, dst_after));
        if src_before == src_after {
            return Ok(result);
        }
        let new_path = match ctx.path(moved.id).await {
            Ok(Some(p)) => p,
            _ => return Ok(result),
        };
        let new_key = crate::keys::object_key(&ctx.prefix, &new_path);
        if let Some(replaced) = replaced
            && replaced.nlink == 0
        {
            let (fs, ino) = (ctx.fs.0, replaced.id.0);
            let cache = Arc::clone(&ctx.cache);
            let _ = tokio::task::spawn_blocking(move || cache.invalidate(fs, ino)).await;
            ctx.files.forget(replaced.id);
            // The moved object is written at the same key; only another key needs a delete.
            if let Some(link) = &replaced.object
                && link.key != new_key
            {
                ctx.delete_key(&link.key).await;
            }
        }
        ctx.relocate(&moved, &old_path, &new_path).await;
        Ok(result)
    }

    async fn link(&self, file: &[u8], dir: &[u8], name: &str) -> FsResult<ChangeInfo> {
        let (fh, dh) = (Handle::decode(file)?, Handle::decode(dir)?);
        let (cinfo, _) = self
            .changed(Command::Link {
                fs: self.ctx.fs,
                ino: fh.ino,
                new_parent: dh.ino,
                new_name: name.to_owned(),
            })
            .await?;
        Ok(cinfo)
    }

    async fn setattr(&self, fh: &[u8], update: AttrUpdate) -> FsResult<()> {
        let h = Handle::decode(fh)?;
        let inode = self.ctx.inode(&h).await?;
        let time = |t: &Option<TimeUpdate>| {
            t.as_ref().map(|t| match t {
                TimeUpdate::Now => SetTime::ServerTime,
                TimeUpdate::Set(t) => SetTime::At(from_nfs_time(t)),
            })
        };
        let set = SetAttrs {
            mode: update.mode,
            uid: update.uid,
            gid: update.gid,
            size: update.size,
            atime: time(&update.atime),
            mtime: time(&update.mtime),
        };
        if inode.kind == FileType::File {
            return self.setattr_file(&h, update, set).await;
        }
        let before = (inode.mode, inode.uid, inode.gid, inode.mtime);
        let after = self.set_attrs(&h, set).await?;
        if before != (after.mode, after.uid, after.gid, after.mtime)
            && matches!(after.kind, FileType::Dir | FileType::Symlink)
            && let Ok(Some(path)) = self.ctx.path(after.id).await
        {
            self.ctx.export_entry(&after, &path).await;
        }
        Ok(())
    }

    async fn read(&self, fh: &[u8], offset: u64, count: u32) -> FsResult<(Vec<u8>, bool)> {
        let h = Handle::decode(fh)?;
        self.ctx.read_data(&h, offset, count).await
    }

    async fn write(
        &self,
        fh: &[u8],
        offset: u64,
        data: &[u8],
        stable: bool,
    ) -> FsResult<Stability> {
        let h = Handle::decode(fh)?;
        metrics::nfs_bytes_written(data.len() as u64);
        let durable = self.ctx.write_data(&h, offset, data, stable).await?;
        Ok(if durable {
            Stability::FileSync
        } else {
            Stability::Unstable
        })
    }

    async fn commit(&self, fh: &[u8]) -> FsResult<()> {
        let h = Handle::decode(fh)?;
        self.ctx.flush(&h).await
    }

    /// CLOSE may only fail with what RFC 8881 §18.2 lists for it: a flush that cannot reach S3
    /// yet is DELAY (the client retries the CLOSE); an object that cannot exist at all (a
    /// path longer than an S3 key) is counted and the close goes ahead, as the namespace
    /// holds the file.
    async fn close(&self, fh: &[u8]) -> FsResult<()> {
        let h = Handle::decode(fh)?;
        let close_status = |s: NfsStatus| match s {
            NfsStatus::Delay | NfsStatus::Stale => s,
            _ => NfsStatus::ServerFault,
        };
        self.ctx.flush(&h).await.map_err(close_status)?;
        let inode = self.ctx.inode(&h).await?;
        if inode.kind == FileType::File {
            // Export on close: a file closed through NFS is an object at its key.
            match self.ctx.export_file(&h).await {
                Ok(()) | Err(NfsStatus::NameTooLong) => {}
                Err(s) => return Err(close_status(s)),
            }
        }
        Ok(())
    }
}

fn nfs_time(t: bucketfs_meta_state::types::Timestamp) -> NfsTime {
    NfsTime {
        seconds: t.secs,
        nseconds: t.nanos,
    }
}

fn from_nfs_time(t: &NfsTime) -> bucketfs_meta_state::types::Timestamp {
    bucketfs_meta_state::types::Timestamp::new(t.seconds, t.nseconds.min(999_999_999))
}

/// The NFS attributes of an inode as meta has it.
pub(crate) fn to_attrs(inode: &Inode) -> FileAttrs {
    let ftype = match inode.kind {
        FileType::File => NfsFileType::Regular,
        FileType::Dir => NfsFileType::Directory,
        FileType::Symlink => NfsFileType::Link,
        FileType::Fifo => NfsFileType::Fifo,
        FileType::Socket => NfsFileType::Socket,
        FileType::CharDev => NfsFileType::Char,
        FileType::BlockDev => NfsFileType::Block,
    };
    FileAttrs {
        fileid: inode.id.0,
        ftype,
        mode: inode.mode & 0o7777,
        nlink: inode.nlink,
        uid: inode.uid,
        gid: inode.gid,
        size: inode.size,
        space_used: inode.size,
        change: inode.change,
        atime: nfs_time(inode.atime),
        mtime: nfs_time(inode.mtime),
        ctime: nfs_time(inode.ctime),
        rawdev: inode.rdev,
    }
}
