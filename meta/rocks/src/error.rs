//! Why a data directory was refused. Every message names the directory, says what is wrong and
//! what the operator can do; none of these cases is ever "fixed" by resetting the store, because
//! a node that forgets its vote or log can break Raft's safety for the whole cluster.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{path}: no metadata store here and creating one was not requested; initialize this \
         node's data directory first, or point the node at the directory that holds its store"
    )]
    Missing { path: PathBuf },

    #[error(
        "{path}: the directory is not empty but holds no metadata store (no RocksDB CURRENT \
         file); refusing to create a store among unknown files: use an empty directory, or if \
         this was this node's store, it is damaged: restore it from a backup or replace the \
         node (remove it from the cluster, then add it back with an empty directory)"
    )]
    NotAStore { path: PathBuf },

    #[error(
        "{path}: the store belongs to cluster {found:?}, but this node is configured for \
         cluster {expected:?}; check the data directory and cluster id settings (a store must \
         never be moved between clusters)"
    )]
    WrongCluster {
        path: PathBuf,
        found: String,
        expected: String,
    },

    #[error(
        "{path}: the store belongs to node {found} of this cluster, but this node is configured \
         as node {expected}; check the data directory and node id settings (starting a store \
         under another node id can elect two leaders)"
    )]
    WrongNode {
        path: PathBuf,
        found: u64,
        expected: u64,
    },

    #[error(
        "{path}: the store has format version {found}, this build understands only version \
         {supported}; run the bucketfs release that wrote it (or a newer one that can migrate it)"
    )]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error(
        "{path}: the store has no identity record ({missing} missing): its creation was \
         interrupted or it was not written by bucketfs; if this node never joined a cluster, \
         delete the directory and initialize it again, otherwise restore it from a backup"
    )]
    MissingIdentity {
        path: PathBuf,
        missing: &'static str,
    },

    #[error(
        "{path}: column family {name:?} is missing, so the store is damaged or incomplete; \
         restore it from a backup or replace the node (remove it from the cluster, then add it \
         back with an empty directory)"
    )]
    MissingColumnFamily { path: PathBuf, name: String },

    #[error(
        "{path}: the store has column families this build does not know ({names:?}); it was \
         probably written by a newer bucketfs release: run that release"
    )]
    UnknownColumnFamilies { path: PathBuf, names: Vec<String> },

    #[error(
        "{path}: the store is already open (RocksDB lock held: {message}); stop the other \
         bucketfs process using this directory"
    )]
    Locked { path: PathBuf, message: String },

    #[error(
        "{path}: RocksDB cannot open the store ({message}); it is damaged: do not delete files \
         to make it start; restore it from a backup or replace the node (remove it from the \
         cluster, then add it back with an empty directory)"
    )]
    Corrupt { path: PathBuf, message: String },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}
