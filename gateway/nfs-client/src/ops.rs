//! The operations, one method each, and path resolution.

use bucketfs_nfs_wire::nfs::attr::{
    FATTR4_FILEHANDLE, FATTR4_FILES_AVAIL, FATTR4_FILES_FREE, FATTR4_FILES_TOTAL,
    FATTR4_SPACE_AVAIL, FATTR4_SPACE_FREE, FATTR4_SPACE_TOTAL,
};
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::{LinkText, Opaque, SpecData, Verifier};
use bucketfs_nfs_wire::nfs::{
    Attr, Bitmap, Component, Fattr, FileHandle, NfsArgOp, NfsResOp, NfsStatus, Opcode, SetAttrs,
    StateId, StateOwner,
};

use crate::attrs::{Attributes, getattr_bitmap};
use crate::client::{Client, WANT_NO_DELEG};
use crate::error::{Error, Result};

/// The error a failed result stands for.
pub(crate) fn error_of(r: &NfsResOp) -> Error {
    match r {
        NfsResOp::Lock(Err(LockError::Denied(d))) | NfsResOp::LockT(Err(LockError::Denied(d))) => {
            Error::LockDenied {
                op: r.opcode(),
                conflict: d.clone(),
            }
        }
        _ => Error::Nfs {
            op: r.opcode(),
            status: r.status(),
        },
    }
}

/// Successful results, taken in order.
pub(crate) struct Results(std::vec::IntoIter<NfsResOp>);

fn unexpected(what: &str, got: Option<NfsResOp>) -> Error {
    Error::Malformed(format!(
        "expected a {what} result, got {:?}",
        got.map(|r| r.opcode())
    ))
}

impl Results {
    pub(crate) fn new(results: Vec<NfsResOp>) -> Result<Self> {
        if let Some(failed) = results.iter().find(|r| !r.status().is_ok()) {
            return Err(error_of(failed));
        }
        Ok(Self(results.into_iter()))
    }

    pub(crate) fn skip(&mut self) -> Result<()> {
        self.0
            .next()
            .map(drop)
            .ok_or_else(|| Error::Malformed("missing result".into()))
    }

    pub(crate) fn fh(&mut self) -> Result<FileHandle> {
        match self.0.next() {
            Some(NfsResOp::GetFh(Ok(fh))) => Ok(fh),
            other => Err(unexpected("GETFH", other)),
        }
    }

    pub(crate) fn fattr(&mut self) -> Result<Fattr> {
        match self.0.next() {
            Some(NfsResOp::GetAttr(Ok(f))) => Ok(f),
            other => Err(unexpected("GETATTR", other)),
        }
    }

    pub(crate) fn attrs(&mut self) -> Result<Attributes> {
        Attributes::from_fattr(&self.fattr()?)
    }

    fn next(&mut self) -> Option<NfsResOp> {
        self.0.next()
    }
}

/// The components of a path below the export root: empty components and "." dropped, ".."
/// kept (sent as LOOKUPP).
pub(crate) fn components(path: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            c => {
                check_name(c)?;
                out.push(c.to_owned());
            }
        }
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return Err(Error::InvalidArgument(format!("bad file name {name:?}")));
    }
    Ok(())
}

fn component(name: &str) -> Result<Component> {
    check_name(name)?;
    if name == "." || name == ".." {
        return Err(Error::InvalidArgument(format!(
            "{name:?} cannot be created or opened by name"
        )));
    }
    Component::new(name)
        .ok_or_else(|| Error::InvalidArgument(format!("name of {} bytes is too long", name.len())))
}

fn putfh(fh: &FileHandle) -> NfsArgOp {
    NfsArgOp::PutFh(PutFhArgs { object: fh.clone() })
}

fn getattr() -> NfsArgOp {
    NfsArgOp::GetAttr(GetAttrArgs {
        attr_request: getattr_bitmap(),
    })
}

/// Splits "/a/b/c" into ("/a/b", "c").
pub fn split_parent(path: &str) -> Result<(&str, &str)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::InvalidArgument(format!("{path:?} names no file")));
    }
    Ok((if parent.is_empty() { "/" } else { parent }, name))
}

/// Share access of an OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenAccess {
    #[default]
    Read,
    Write,
    Both,
}

impl OpenAccess {
    fn bits(self) -> u32 {
        match self {
            OpenAccess::Read => OPEN4_SHARE_ACCESS_READ,
            OpenAccess::Write => OPEN4_SHARE_ACCESS_WRITE,
            OpenAccess::Both => OPEN4_SHARE_ACCESS_BOTH,
        }
    }
}

/// Share deny of an OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpenDeny {
    #[default]
    None,
    Read,
    Write,
    Both,
}

impl OpenDeny {
    fn bits(self) -> u32 {
        match self {
            OpenDeny::None => OPEN4_SHARE_DENY_NONE,
            OpenDeny::Read => OPEN4_SHARE_DENY_READ,
            OpenDeny::Write => OPEN4_SHARE_DENY_WRITE,
            OpenDeny::Both => OPEN4_SHARE_DENY_BOTH,
        }
    }
}

/// How OPEN creates a missing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateMode {
    /// UNCHECKED4: create if missing; an existing file is opened (and truncated if the
    /// attributes carry size 0).
    Unchecked(SetAttrs),
    /// GUARDED4: fail with NFS4ERR_EXIST if the file exists.
    Guarded(SetAttrs),
    /// EXCLUSIVE4_1: exactly-once create keyed by `verifier` (a retransmission succeeds).
    Exclusive { verifier: Verifier, attrs: SetAttrs },
}

/// Arguments of [`Client::open`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOptions {
    pub access: OpenAccess,
    pub deny: OpenDeny,
    /// `None`: the file must exist.
    pub create: Option<CreateMode>,
    /// The open-owner; `None` gives every open its own.
    pub owner: Option<Vec<u8>>,
}

impl OpenOptions {
    pub fn read() -> Self {
        Self::default()
    }

    pub fn write() -> Self {
        Self {
            access: OpenAccess::Write,
            ..Self::default()
        }
    }

    /// Write access, creating the file (UNCHECKED4) with `mode` if it is missing.
    pub fn create(mode: u32) -> Self {
        Self {
            access: OpenAccess::Both,
            create: Some(CreateMode::Unchecked(SetAttrs {
                mode: Some(mode),
                ..SetAttrs::default()
            })),
            ..Self::default()
        }
    }
}

/// An open file: its handle, the open stateid for READ/WRITE/CLOSE/LOCK, and its attributes
/// right after the OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFile {
    pub fh: FileHandle,
    pub stateid: StateId,
    pub attrs: Attributes,
    /// The open-owner it was opened with.
    pub owner: Vec<u8>,
    /// OPEN's rflags (OPEN4_RESULT_*).
    pub rflags: u32,
}

/// What [`Client::statfs`] reports; attributes the server did not return are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsStat {
    pub space_total: u64,
    pub space_free: u64,
    pub space_avail: u64,
    pub files_total: u64,
    pub files_free: u64,
    pub files_avail: u64,
}

/// Result of READ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub data: Vec<u8>,
    pub eof: bool,
}

/// Result of WRITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteResult {
    pub count: u32,
    pub committed: StableHow,
    pub verifier: Verifier,
}

/// Result of ACCESS: which of the asked bits the server could check, and which it grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessResult {
    pub supported: u32,
    pub access: u32,
}

/// One READDIR entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    pub cookie: u64,
    pub attrs: Attributes,
    /// The entry's handle, when the server returned it.
    pub fh: Option<FileHandle>,
}

/// What [`Client::mknod`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Fifo,
    Socket,
    Block { major: u32, minor: u32 },
    Char { major: u32, minor: u32 },
}

/// Lock type of LOCK/LOCKT/LOCKU (non-blocking: a conflict is [`Error::LockDenied`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Read,
    Write,
}

impl LockKind {
    fn wire(self) -> LockType {
        match self {
            LockKind::Read => LockType::Read,
            LockKind::Write => LockType::Write,
        }
    }
}

/// The READDIR reply budget.
const READDIR_MAXCOUNT: u32 = 32 * 1024;

impl Client {
    /// Resolves `path` (relative to the export root; a leading "/" is allowed) component by
    /// component; returns the handle and attributes of the last one.
    pub async fn lookup(&self, path: &str) -> Result<(FileHandle, Attributes)> {
        let comps = components(path)?;
        self.lookup_components(self.root(), &comps).await
    }

    /// Looks `name` up in directory `dir`.
    pub async fn lookup_in(
        &self,
        dir: &FileHandle,
        name: &str,
    ) -> Result<(FileHandle, Attributes)> {
        check_name(name)?;
        self.lookup_components(dir, &[name.to_owned()]).await
    }

    /// LOOKUPs from `start`, as many per COMPOUND as the session allows. A failure names the
    /// op (LOOKUP) and its status.
    pub(crate) async fn lookup_components(
        &self,
        start: &FileHandle,
        comps: &[String],
    ) -> Result<(FileHandle, Attributes)> {
        let per_call = (self.max_ops() as usize).saturating_sub(4).max(1);
        let mut fh = start.clone();
        let mut chunks: Vec<&[String]> = comps.chunks(per_call).collect();
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let mut attrs = None;
        for chunk in chunks {
            let mut ops = vec![putfh(&fh)];
            for c in chunk {
                ops.push(if c == ".." {
                    NfsArgOp::LookupP
                } else {
                    NfsArgOp::Lookup(LookupArgs {
                        objname: Component::new(c.as_str()).ok_or_else(|| {
                            Error::InvalidArgument(format!("name of {} bytes is too long", c.len()))
                        })?,
                    })
                });
            }
            ops.push(NfsArgOp::GetFh);
            ops.push(getattr());
            let mut r = Results::new(self.compound(&ops).await?)?;
            for _ in 0..=chunk.len() {
                r.skip()?;
            }
            fh = r.fh()?;
            attrs = Some(r.attrs()?);
        }
        let attrs = attrs.ok_or_else(|| Error::Malformed("no attributes".into()))?;
        Ok((fh, attrs))
    }

    fn max_ops(&self) -> u32 {
        self.inner
            .current_link_max_ops()
            .unwrap_or(self.fs_info().max_ops)
    }

    /// GETATTR with the Linux client's 15 attributes.
    pub async fn getattr(&self, fh: &FileHandle) -> Result<Attributes> {
        let mut r = Results::new(self.compound(&[putfh(fh), getattr()]).await?)?;
        r.skip()?;
        r.attrs()
    }

    /// The file system's capacity as `statfs(2)` reports it (space and files attributes of
    /// the export root).
    pub async fn statfs(&self) -> Result<FsStat> {
        let request = Bitmap::from_bits(&[
            FATTR4_FILES_AVAIL,
            FATTR4_FILES_FREE,
            FATTR4_FILES_TOTAL,
            FATTR4_SPACE_AVAIL,
            FATTR4_SPACE_FREE,
            FATTR4_SPACE_TOTAL,
        ]);
        let ops = [
            putfh(self.root()),
            NfsArgOp::GetAttr(GetAttrArgs {
                attr_request: request,
            }),
        ];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        let values = r
            .fattr()?
            .decode_attrs()
            .map_err(|e| Error::Malformed(format!("fattr4: {e}")))?;
        let mut out = FsStat::default();
        for v in values {
            match v {
                Attr::FilesAvail(n) => out.files_avail = n,
                Attr::FilesFree(n) => out.files_free = n,
                Attr::FilesTotal(n) => out.files_total = n,
                Attr::SpaceAvail(n) => out.space_avail = n,
                Attr::SpaceFree(n) => out.space_free = n,
                Attr::SpaceTotal(n) => out.space_total = n,
                _ => {}
            }
        }
        Ok(out)
    }

    /// ACCESS with the ACCESS4_* bits in `mask`.
    pub async fn access(&self, fh: &FileHandle, mask: u32) -> Result<AccessResult> {
        let mut r = Results::new(
            self.compound(&[putfh(fh), NfsArgOp::Access(AccessArgs { access: mask })])
                .await?,
        )?;
        r.skip()?;
        match r.next() {
            Some(NfsResOp::Access(Ok(a))) => Ok(AccessResult {
                supported: a.supported,
                access: a.access,
            }),
            other => Err(unexpected("ACCESS", other)),
        }
    }

    /// Every entry of directory `dir`, following cookies across pages.
    pub async fn readdir(&self, dir: &FileHandle) -> Result<Vec<DirEntry>> {
        let mut request = getattr_bitmap();
        request.insert(FATTR4_FILEHANDLE);
        let maxcount = READDIR_MAXCOUNT.min(self.fs_info().rsize);
        let mut out = Vec::new();
        let (mut cookie, mut verf) = (0u64, [0u8; 8]);
        loop {
            let ops = [
                putfh(dir),
                NfsArgOp::Readdir(ReaddirArgs {
                    cookie,
                    cookieverf: verf,
                    dircount: maxcount,
                    maxcount,
                    attr_request: request.clone(),
                }),
            ];
            let mut r = Results::new(self.compound(&ops).await?)?;
            r.skip()?;
            let page = match r.next() {
                Some(NfsResOp::Readdir(Ok(page))) => page,
                other => return Err(unexpected("READDIR", other)),
            };
            if page.entries.is_empty() && !page.eof {
                return Err(Error::Malformed(
                    "READDIR page with no entries and no eof".into(),
                ));
            }
            let last_cookie = page.entries.last().map(|e| e.cookie);
            for e in page.entries {
                let values = e
                    .attrs
                    .decode_attrs()
                    .map_err(|err| Error::Malformed(format!("READDIR entry attributes: {err}")))?;
                let fh = values.iter().find_map(|v| match v {
                    Attr::FileHandle(fh) => Some(fh.clone()),
                    _ => None,
                });
                out.push(DirEntry {
                    name: e.name.as_str().to_owned(),
                    cookie: e.cookie,
                    attrs: Attributes::from_values(e.attrs.mask.clone(), values)?,
                    fh,
                });
            }
            if page.eof {
                return Ok(out);
            }
            match last_cookie {
                Some(c) if c != cookie => cookie = c,
                _ => return Err(Error::Malformed("READDIR cookie did not advance".into())),
            }
            verf = page.cookieverf;
        }
    }

    async fn create_node(
        &self,
        dir: &FileHandle,
        name: &str,
        objtype: CreateType,
        attrs: &SetAttrs,
    ) -> Result<(FileHandle, Attributes)> {
        let ops = [
            putfh(dir),
            NfsArgOp::Create(CreateArgs {
                objtype,
                objname: component(name)?,
                createattrs: attrs.to_fattr(),
            }),
            NfsArgOp::GetFh,
            getattr(),
        ];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        r.skip()?;
        Ok((r.fh()?, r.attrs()?))
    }

    /// CREATE of a directory.
    pub async fn mkdir(
        &self,
        dir: &FileHandle,
        name: &str,
        mode: u32,
    ) -> Result<(FileHandle, Attributes)> {
        let attrs = SetAttrs {
            mode: Some(mode),
            ..SetAttrs::default()
        };
        self.create_node(dir, name, CreateType::Directory, &attrs)
            .await
    }

    /// CREATE of a symbolic link to `target` (any bytes).
    pub async fn symlink(
        &self,
        dir: &FileHandle,
        name: &str,
        target: &[u8],
    ) -> Result<(FileHandle, Attributes)> {
        let attrs = SetAttrs {
            mode: Some(0o777),
            ..SetAttrs::default()
        };
        self.create_node(
            dir,
            name,
            CreateType::Link(LinkText(target.to_vec())),
            &attrs,
        )
        .await
    }

    /// CREATE of a fifo, socket or device node.
    pub async fn mknod(
        &self,
        dir: &FileHandle,
        name: &str,
        kind: NodeKind,
        mode: u32,
    ) -> Result<(FileHandle, Attributes)> {
        let objtype = match kind {
            NodeKind::Fifo => CreateType::Fifo,
            NodeKind::Socket => CreateType::Socket,
            NodeKind::Block { major, minor } => CreateType::Block(SpecData { major, minor }),
            NodeKind::Char { major, minor } => CreateType::Char(SpecData { major, minor }),
        };
        let attrs = SetAttrs {
            mode: Some(mode),
            ..SetAttrs::default()
        };
        self.create_node(dir, name, objtype, &attrs).await
    }

    fn open_args(&self, opts: &OpenOptions, claim: OpenClaim) -> Result<(NfsArgOp, Vec<u8>)> {
        let owner = opts.owner.clone().unwrap_or_else(|| self.new_open_owner());
        let openhow = match &opts.create {
            None => OpenFlag::NoCreate,
            Some(CreateMode::Unchecked(a)) => OpenFlag::Create(CreateHow::Unchecked(a.to_fattr())),
            Some(CreateMode::Guarded(a)) => OpenFlag::Create(CreateHow::Guarded(a.to_fattr())),
            Some(CreateMode::Exclusive { verifier, attrs }) => {
                OpenFlag::Create(CreateHow::Exclusive41 {
                    verifier: *verifier,
                    attrs: attrs.to_fattr(),
                })
            }
        };
        let op = NfsArgOp::Open(OpenArgs {
            seqid: 0,
            share_access: opts.access.bits() | WANT_NO_DELEG,
            share_deny: opts.deny.bits(),
            owner: StateOwner {
                clientid: self.clientid(),
                owner: Opaque(owner.clone()),
            },
            openhow,
            claim,
        });
        Ok((op, owner))
    }

    fn open_result(r: &mut Results, fh: Option<FileHandle>, owner: Vec<u8>) -> Result<OpenFile> {
        let ok = match r.next() {
            Some(NfsResOp::Open(Ok(ok))) => ok,
            other => return Err(unexpected("OPEN", other)),
        };
        let fh = match fh {
            Some(fh) => fh,
            None => r.fh()?,
        };
        Ok(OpenFile {
            fh,
            stateid: ok.stateid,
            attrs: r.attrs()?,
            owner,
            rflags: ok.rflags,
        })
    }

    /// OPEN CLAIM_NULL of `name` in `dir`, creating it as `opts.create` says.
    pub async fn open(&self, dir: &FileHandle, name: &str, opts: &OpenOptions) -> Result<OpenFile> {
        let (op, owner) = self.open_args(opts, OpenClaim::Null(component(name)?))?;
        let ops = [putfh(dir), op, NfsArgOp::GetFh, getattr()];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        Self::open_result(&mut r, None, owner)
    }

    /// OPEN CLAIM_FH of the file `fh` (no create).
    pub async fn open_fh(&self, fh: &FileHandle, opts: &OpenOptions) -> Result<OpenFile> {
        if opts.create.is_some() {
            return Err(Error::InvalidArgument("CLAIM_FH cannot create".into()));
        }
        let (op, owner) = self.open_args(opts, OpenClaim::Fh)?;
        let ops = [putfh(fh), op, getattr()];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        Self::open_result(&mut r, Some(fh.clone()), owner)
    }

    /// CLOSE of an open stateid.
    pub async fn close_file(&self, fh: &FileHandle, stateid: &StateId) -> Result<()> {
        let ops = [
            putfh(fh),
            NfsArgOp::Close(CloseArgs {
                seqid: 0,
                open_stateid: stateid.clone(),
            }),
        ];
        self.compound(&ops).await.map(drop)
    }

    /// READ of up to `count` bytes at `offset`.
    pub async fn read(
        &self,
        fh: &FileHandle,
        stateid: &StateId,
        offset: u64,
        count: u32,
    ) -> Result<ReadResult> {
        let ops = [
            putfh(fh),
            NfsArgOp::Read(ReadArgs {
                stateid: stateid.clone(),
                offset,
                count,
            }),
        ];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        match r.next() {
            Some(NfsResOp::Read(Ok(ok))) => {
                if ok.data.0.len() > count as usize {
                    return Err(Error::Malformed(format!(
                        "READ of {count} bytes answered {}",
                        ok.data.0.len()
                    )));
                }
                Ok(ReadResult {
                    data: ok.data.0,
                    eof: ok.eof,
                })
            }
            other => Err(unexpected("READ", other)),
        }
    }

    /// WRITE of `data` at `offset`.
    pub async fn write(
        &self,
        fh: &FileHandle,
        stateid: &StateId,
        offset: u64,
        data: &[u8],
        stable: StableHow,
    ) -> Result<WriteResult> {
        let ops = [
            putfh(fh),
            NfsArgOp::Write(WriteArgs {
                stateid: stateid.clone(),
                offset,
                stable,
                data: Data(data.to_vec()),
            }),
        ];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        match r.next() {
            Some(NfsResOp::Write(Ok(ok))) => {
                if ok.count as usize > data.len() {
                    return Err(Error::Malformed(format!(
                        "WRITE of {} bytes answered count {}",
                        data.len(),
                        ok.count
                    )));
                }
                Ok(WriteResult {
                    count: ok.count,
                    committed: ok.committed,
                    verifier: ok.writeverf,
                })
            }
            other => Err(unexpected("WRITE", other)),
        }
    }

    /// COMMIT of `count` bytes at `offset` (0, 0: the whole file); returns the verifier.
    pub async fn commit(&self, fh: &FileHandle, offset: u64, count: u32) -> Result<Verifier> {
        let ops = [putfh(fh), NfsArgOp::Commit(CommitArgs { offset, count })];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        match r.next() {
            Some(NfsResOp::Commit(Ok(v))) => Ok(v),
            other => Err(unexpected("COMMIT", other)),
        }
    }

    /// SETATTR (mode, owner, group, size, times); a size change needs the open stateid.
    /// Returns the attributes afterwards.
    pub async fn setattr(
        &self,
        fh: &FileHandle,
        stateid: Option<&StateId>,
        attrs: &SetAttrs,
    ) -> Result<Attributes> {
        let ops = [
            putfh(fh),
            NfsArgOp::SetAttr(SetAttrArgs {
                stateid: stateid.cloned().unwrap_or(StateId::ANONYMOUS),
                obj_attributes: attrs.to_fattr(),
            }),
            getattr(),
        ];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        r.skip()?;
        r.attrs()
    }

    /// REMOVE of `name` from `dir` (files, symlinks, empty directories).
    pub async fn remove(&self, dir: &FileHandle, name: &str) -> Result<()> {
        let ops = [
            putfh(dir),
            NfsArgOp::Remove(RemoveArgs {
                target: component(name)?,
            }),
        ];
        self.compound(&ops).await.map(drop)
    }

    /// RENAME `src_dir/src` to `dst_dir/dst` (replacing a compatible target).
    pub async fn rename(
        &self,
        src_dir: &FileHandle,
        src: &str,
        dst_dir: &FileHandle,
        dst: &str,
    ) -> Result<()> {
        let ops = [
            putfh(src_dir),
            NfsArgOp::SaveFh,
            putfh(dst_dir),
            NfsArgOp::Rename(RenameArgs {
                oldname: component(src)?,
                newname: component(dst)?,
            }),
        ];
        self.compound(&ops).await.map(drop)
    }

    /// LINK: a new name `dir/name` for `file`.
    pub async fn link(&self, file: &FileHandle, dir: &FileHandle, name: &str) -> Result<()> {
        let ops = [
            putfh(file),
            NfsArgOp::SaveFh,
            putfh(dir),
            NfsArgOp::Link(LinkArgs {
                newname: component(name)?,
            }),
        ];
        self.compound(&ops).await.map(drop)
    }

    /// READLINK: a symlink's target bytes.
    pub async fn readlink(&self, fh: &FileHandle) -> Result<Vec<u8>> {
        let mut r = Results::new(self.compound(&[putfh(fh), NfsArgOp::ReadLink]).await?)?;
        r.skip()?;
        match r.next() {
            Some(NfsResOp::ReadLink(Ok(t))) => Ok(t.0),
            other => Err(unexpected("READLINK", other)),
        }
    }

    async fn lock_with(
        &self,
        fh: &FileHandle,
        kind: LockKind,
        offset: u64,
        length: u64,
        locker: Locker,
    ) -> Result<StateId> {
        let ops = [
            putfh(fh),
            NfsArgOp::Lock(LockArgs {
                locktype: kind.wire(),
                reclaim: false,
                offset,
                length,
                locker,
            }),
        ];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        match r.next() {
            Some(NfsResOp::Lock(Ok(s))) => Ok(s),
            other => Err(unexpected("LOCK", other)),
        }
    }

    /// LOCK for a new lock-owner `owner`, from the open `file`; returns the lock stateid.
    /// `length` u64::MAX means to the end of the file. A conflict is [`Error::LockDenied`].
    pub async fn lock(
        &self,
        file: &OpenFile,
        owner: &[u8],
        kind: LockKind,
        offset: u64,
        length: u64,
    ) -> Result<StateId> {
        let locker = Locker::New(OpenToLockOwner {
            open_seqid: 0,
            open_stateid: file.stateid.clone(),
            lock_seqid: 0,
            lock_owner: StateOwner {
                clientid: self.clientid(),
                owner: Opaque(owner.to_vec()),
            },
        });
        self.lock_with(&file.fh, kind, offset, length, locker).await
    }

    /// LOCK with an existing lock stateid (a lock-owner that already holds locks on `fh`).
    pub async fn lock_again(
        &self,
        fh: &FileHandle,
        lock_stateid: &StateId,
        kind: LockKind,
        offset: u64,
        length: u64,
    ) -> Result<StateId> {
        let locker = Locker::Existing(ExistLockOwner {
            lock_stateid: lock_stateid.clone(),
            lock_seqid: 0,
        });
        self.lock_with(fh, kind, offset, length, locker).await
    }

    /// LOCKT: `None` if lock-owner `owner` could take the lock, else the conflicting lock.
    pub async fn lockt(
        &self,
        fh: &FileHandle,
        owner: &[u8],
        kind: LockKind,
        offset: u64,
        length: u64,
    ) -> Result<Option<LockDenied>> {
        let ops = [
            putfh(fh),
            NfsArgOp::LockT(LockTArgs {
                locktype: kind.wire(),
                offset,
                length,
                owner: StateOwner {
                    clientid: self.clientid(),
                    owner: Opaque(owner.to_vec()),
                },
            }),
        ];
        let results = self.compound_raw(&ops).await?;
        match results.as_slice() {
            [_, NfsResOp::LockT(Ok(()))] => Ok(None),
            [_, NfsResOp::LockT(Err(LockError::Denied(d)))] => Ok(Some(d.clone())),
            _ => Err(Results::new(results)
                .err()
                .unwrap_or_else(|| Error::Malformed("LOCKT: missing result".into()))),
        }
    }

    /// LOCKU of a range held under `lock_stateid`; returns the updated lock stateid.
    pub async fn locku(
        &self,
        fh: &FileHandle,
        lock_stateid: &StateId,
        kind: LockKind,
        offset: u64,
        length: u64,
    ) -> Result<StateId> {
        let ops = [
            putfh(fh),
            NfsArgOp::LockU(LockUArgs {
                locktype: kind.wire(),
                seqid: 0,
                lock_stateid: lock_stateid.clone(),
                offset,
                length,
            }),
        ];
        let mut r = Results::new(self.compound(&ops).await?)?;
        r.skip()?;
        match r.next() {
            Some(NfsResOp::LockU(Ok(s))) => Ok(s),
            other => Err(unexpected("LOCKU", other)),
        }
    }

    /// Resolves the parent of `path` and returns its handle with the last component.
    pub async fn lookup_parent<'p>(&self, path: &'p str) -> Result<(FileHandle, &'p str)> {
        let (parent, name) = split_parent(path)?;
        let (fh, attrs) = self.lookup(parent).await?;
        if !attrs.is_dir() {
            return Err(Error::Nfs {
                op: Opcode::Lookup,
                status: NfsStatus::NotDir,
            });
        }
        Ok((fh, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(components("/a//b/./c/").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(components("..").unwrap(), vec![".."]);
        assert!(components("/").unwrap().is_empty());
        assert_eq!(split_parent("/a/b").unwrap(), ("/a", "b"));
        assert_eq!(split_parent("b/").unwrap(), ("/", "b"));
        assert_eq!(split_parent("/b").unwrap(), ("/", "b"));
        assert!(split_parent("/").is_err());
        assert!(split_parent("/a/..").is_err());
        assert!(component("a/b").is_err());
        assert!(component(&"x".repeat(2000)).is_err());
    }
}
