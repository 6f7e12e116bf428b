//! A single-replica harness over the public API: applies proposals to a `MemKv` the way the
//! Raft adapter does (one `Txn` per entry, increasing indexes), and resolves paths through
//! queries so tests can speak in paths instead of inode numbers.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::collections::{BTreeMap, BTreeSet};

use bucketfs_meta_state::command::{ApplyResult, CreateMode, NewInode, RemoveKind};
use bucketfs_meta_state::kv::{MemKv, Table, Txn};
use bucketfs_meta_state::types::{ClientId, FileType, FsId, Inode, InodeId, Timestamp};
use bucketfs_meta_state::{Command, NsError, Proposal, Query, QueryReply, Reply, apply, query};

pub struct Harness {
    pub kv: MemKv,
    /// Log index of the last applied entry.
    pub index: u64,
    pub client: ClientId,
    /// Last sequence number used by `run`.
    pub seq: u64,
    pub now: Timestamp,
    /// Named inode handles (`@name` in paths), kept across removals to test staleness.
    pub handles: BTreeMap<String, (FsId, InodeId)>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    pub fn new() -> Self {
        Harness {
            kv: MemKv::default(),
            index: 0,
            client: ClientId(0xC11E),
            seq: 0,
            now: Timestamp::new(1_700_000_000, 0),
            handles: BTreeMap::new(),
        }
    }

    /// Applies a proposal as the next log entry, committing its writes.
    pub fn propose(&mut self, proposal: &Proposal) -> ApplyResult {
        self.index += 1;
        let mut txn = Txn::new(&self.kv);
        let result = apply(&mut txn, self.index, proposal).expect("MemKv cannot fail");
        let writes = txn.into_writes();
        self.kv.apply(writes);
        result
    }

    /// Runs a command as the harness client's next request, every earlier one acknowledged.
    /// The clock moves one millisecond per command so timestamps tell commands apart.
    pub fn run(&mut self, command: Command) -> ApplyResult {
        self.seq += 1;
        self.now = Timestamp::from_unix_nanos(self.now.as_unix_nanos() + 1_000_000);
        let proposal = Proposal {
            client: self.client,
            seq: self.seq,
            ack_below: self.seq,
            now: self.now,
            command,
        };
        self.propose(&proposal)
    }

    pub fn query(&self, q: Query) -> Result<QueryReply, NsError> {
        query(&self.kv, &q).expect("MemKv cannot fail")
    }

    pub fn mkfs(&mut self, name: &str) -> FsId {
        match self.run(Command::CreateFs {
            name: name.into(),
            bucket: "bucket".into(),
            prefix: format!("{name}/"),
        }) {
            Ok(Reply::Fs(info)) => info.id,
            other => panic!("mkfs {name}: {other:?}"),
        }
    }

    pub fn fs_id(&self, name: &str) -> Result<FsId, NsError> {
        match self.query(Query::GetFs { name: name.into() })? {
            QueryReply::Fs(info) => Ok(info.id),
            other => panic!("GetFs: {other:?}"),
        }
    }

    pub fn getattr(&self, fs: FsId, ino: InodeId) -> Result<Inode, NsError> {
        match self.query(Query::GetAttr { fs, ino })? {
            QueryReply::Inode(i) => Ok(i),
            other => panic!("GetAttr: {other:?}"),
        }
    }

    pub fn lookup(&self, fs: FsId, parent: InodeId, name: &str) -> Result<Inode, NsError> {
        match self.query(Query::Lookup {
            fs,
            parent,
            name: name.into(),
        })? {
            QueryReply::Inode(i) => Ok(i),
            other => panic!("Lookup: {other:?}"),
        }
    }

    /// `[fs:]/a/b` or `[fs:]@handle/a/b`; the default file system is "main".
    pub fn resolve(&self, path: &str) -> Result<(FsId, Inode), NsError> {
        let (fs, ino) = self.resolve_id(path)?;
        Ok((fs, self.getattr(fs, ino)?))
    }

    /// Like `resolve` without reading the final inode: a bare `@handle` is returned as
    /// is, so commands (not queries) get to report a stale handle.
    pub fn resolve_id(&self, path: &str) -> Result<(FsId, InodeId), NsError> {
        let (fs, mut ino, rest) = self.start(path)?;
        for name in rest.split('/').filter(|c| !c.is_empty()) {
            ino = self.lookup(fs, ino, &expand(name))?.id;
        }
        Ok((fs, ino))
    }

    /// The parent directory's inode id and the last name of `path`, which is not looked up.
    pub fn split(&self, path: &str) -> Result<(FsId, InodeId, String), NsError> {
        let cut = path.rfind('/').expect("a path names a parent");
        let (parent, name) = (&path[..cut], &path[cut + 1..]);
        let parent = if parent.is_empty() || parent.ends_with(':') {
            format!("{parent}/")
        } else {
            parent.to_string()
        };
        let (fs, dir) = self.resolve_id(&parent)?;
        Ok((fs, dir, expand(name)))
    }

    fn start(&self, path: &str) -> Result<(FsId, InodeId, String), NsError> {
        let (fs_name, path) = match path.split_once(':') {
            Some((fs, p)) => (fs, p),
            None => ("main", path),
        };
        if let Some(handle) = path.strip_prefix('@') {
            let (name, rest) = handle.split_once('/').unwrap_or((handle, ""));
            let (fs, ino) = *self
                .handles
                .get(name)
                .unwrap_or_else(|| panic!("unknown handle @{name}"));
            return Ok((fs, ino, rest.to_string()));
        }
        Ok((self.fs_id(fs_name)?, InodeId::ROOT, path.to_string()))
    }

    /// Every path below the root of `fs`, depth first, with its inode; directories end in `/`.
    pub fn tree(&self, fs: FsId) -> Vec<(String, Inode)> {
        let mut out = Vec::new();
        self.walk(fs, InodeId::ROOT, "/", &mut out);
        out
    }

    fn walk(&self, fs: FsId, dir: InodeId, prefix: &str, out: &mut Vec<(String, Inode)>) {
        for entry in self.read_dir_all(fs, dir, 3) {
            let path = format!("{prefix}{}", entry.name);
            if entry.inode.kind == FileType::Dir {
                let dir_path = format!("{path}/");
                out.push((dir_path.clone(), entry.inode.clone()));
                self.walk(fs, entry.inode.id, &dir_path, out);
            } else {
                out.push((path, entry.inode));
            }
        }
    }

    /// Reads a whole directory in pages of `page` entries.
    pub fn read_dir_all(
        &self,
        fs: FsId,
        dir: InodeId,
        page: u32,
    ) -> Vec<bucketfs_meta_state::types::DirEntry> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let QueryReply::Page(p) = self
                .query(Query::ReadDir {
                    fs,
                    dir,
                    after_cookie: after,
                    limit: page,
                })
                .expect("readdir")
            else {
                panic!("ReadDir answers with a page");
            };
            if let Some(last) = p.entries.last() {
                after = last.cookie;
            }
            let done = p.eof;
            out.extend(p.entries);
            if done {
                return out;
            }
        }
    }
}

impl Harness {
    /// Links and Path of every inode in `fs` against what READDIR shows: each inode's
    /// links are exactly the entries that name it, its path looks up back to it, and the
    /// reverse index holds one row per entry (so no row outlived its entry).
    pub fn check_link_index(&self, fs: FsId) -> Result<(), String> {
        let mut expected: BTreeMap<InodeId, BTreeSet<(InodeId, String)>> = BTreeMap::new();
        let mut dirs = vec![InodeId::ROOT];
        let mut entries = 0;
        while let Some(dir) = dirs.pop() {
            for e in self.read_dir_all(fs, dir, 16) {
                entries += 1;
                if e.inode.kind == FileType::Dir {
                    dirs.push(e.inode.id);
                }
                expected
                    .entry(e.inode.id)
                    .or_default()
                    .insert((dir, e.name));
            }
        }
        for (ino, names) in &expected {
            let QueryReply::Links(links) = self
                .query(Query::Links { fs, ino: *ino })
                .map_err(|e| format!("Links of {ino:?}: {e:?}"))?
            else {
                panic!("Links answers with links");
            };
            let got: BTreeSet<(InodeId, String)> = links.iter().cloned().collect();
            if got.len() != links.len() || &got != names {
                return Err(format!("links of {ino:?}: {links:?}, entries: {names:?}"));
            }
            let path = match self.query(Query::Path { fs, ino: *ino }) {
                Ok(QueryReply::Path(Some(p))) => p,
                other => return Err(format!("Path of {ino:?}: {other:?}")),
            };
            // The path starts with the oldest link's name and resolves back to the inode.
            let (first_parent, first_name) = &links[0];
            if !path.ends_with(first_name.as_str()) {
                return Err(format!(
                    "{ino:?}: path {path:?} does not end in {first_name:?}"
                ));
            }
            let mut at = InodeId::ROOT;
            let mut parent = InodeId::ROOT;
            for name in path.split('/') {
                parent = at;
                at = self
                    .lookup(fs, at, name)
                    .map_err(|e| format!("{ino:?}: path {path:?} at {name:?}: {e:?}"))?
                    .id;
            }
            if at != *ino || parent != *first_parent {
                return Err(format!("{ino:?}: path {path:?} leads to {at:?}"));
            }
        }
        if self.query(Query::Path {
            fs,
            ino: InodeId::ROOT,
        }) != Ok(QueryReply::Path(Some(String::new())))
        {
            return Err("the root's path is not empty".into());
        }
        // `LINK_OF` (0x13 in keys.rs, part of the persisted format), then the fs id.
        let mut prefix = vec![0x13];
        prefix.extend(fs.0.to_be_bytes());
        let rows = self
            .kv
            .rows
            .keys()
            .filter(|(t, k)| *t == Table::Meta && k.starts_with(&prefix))
            .count();
        if rows != entries {
            return Err(format!("{rows} link index rows for {entries} entries"));
        }
        Ok(())
    }
}

/// `x*300` stands for 300 `x`s, for name-length tests.
pub fn expand(name: &str) -> String {
    match name.split_once('*') {
        Some((unit, count)) if count.parse::<usize>().is_ok() => {
            unit.repeat(count.parse().expect("checked"))
        }
        _ => name.to_string(),
    }
}

/// Commands built from paths.
pub fn create(fs: FsId, parent: InodeId, name: String, kind: NewInode, how: CreateMode) -> Command {
    let mode = if kind == NewInode::Dir { 0o755 } else { 0o644 };
    Command::Create {
        fs,
        parent,
        name,
        kind,
        mode,
        uid: 1000,
        gid: 1000,
        how,
    }
}

pub fn remove(fs: FsId, parent: InodeId, name: String, kind: RemoveKind) -> Command {
    Command::Remove {
        fs,
        parent,
        name,
        kind,
    }
}

/// The variant name of an error, as the test tables write it.
pub fn error_name(e: &NsError) -> String {
    let debug = format!("{e:?}");
    debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}
