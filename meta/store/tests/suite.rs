//! openraft's storage conformance suite on the in-memory engine.

use bucketfs_meta_store::{MemDisk, MetaLogStore, MetaStateMachine, TypeConfig};
use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::type_config::TypeConfigExt;

struct MemBuilder;

impl StoreBuilder<TypeConfig, MetaLogStore, MetaStateMachine, MemDisk> for MemBuilder {
    async fn build(
        &self,
    ) -> Result<(MemDisk, MetaLogStore, MetaStateMachine), StorageError<TypeConfig>> {
        let disk = MemDisk::new();
        let (log, sm) = disk.open();
        Ok((disk, log, sm))
    }
}

#[test]
fn openraft_storage_suite_on_memory() {
    TypeConfig::run(async {
        Suite::test_all(MemBuilder).await.unwrap();
    });
}
