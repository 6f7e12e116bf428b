//! openraft's storage conformance suite on RocksDB.

use bucketfs_meta_rocks::{NodeIdentity, RocksBackend};
use bucketfs_meta_store::{MetaLogStore, MetaStateMachine, TypeConfig};
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;
use tempfile::TempDir;

struct RocksBuilder;

impl StoreBuilder<TypeConfig, MetaLogStore, MetaStateMachine, TempDir> for RocksBuilder {
    async fn build(
        &self,
    ) -> Result<(TempDir, MetaLogStore, MetaStateMachine), StorageError<TypeConfig>> {
        let dir = TempDir::new().map_err(|e| StorageError::read(TypeConfig::err_from_error(&e)))?;
        let identity = NodeIdentity {
            cluster_id: "suite".into(),
            node_id: 0,
        };
        let backend = RocksBackend::open(&dir.path().join("meta"), &identity, true)
            .map_err(|e| StorageError::read(TypeConfig::err_from_error(&e)))?;
        let (log, sm) = backend.into_stores();
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_on_rocksdb() {
    TypeConfig::run(async {
        Suite::test_all(RocksBuilder).await.unwrap();
    });
}
