//! `Txn` must read exactly like the base with its writes applied: `get` and `scan` (range,
//! limit, deletions hiding base rows, table isolation including the last table), also when
//! transactions nest, as the exactly-once layer nests one per command.

use bucketfs_meta_state::kv::{KvRead, MemKv, Table, Txn, WriteSet};
use proptest::prelude::*;

fn table() -> impl Strategy<Value = Table> {
    // The first, a middle and the last table: the edges are where bounds go wrong.
    prop_oneof![
        Just(Table::Meta),
        Just(Table::Dirents),
        Just(Table::SyncQueue),
        Just(Table::System)
    ]
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(0xff)], 0..4)
}

fn rows() -> impl Strategy<Value = Vec<(Table, Vec<u8>, Vec<u8>)>> {
    prop::collection::vec((table(), key(), key()), 0..40)
}

/// A staged write: `None` deletes.
type Write = (Table, Vec<u8>, Option<Vec<u8>>);

fn writes() -> impl Strategy<Value = Vec<Write>> {
    prop::collection::vec((table(), key(), prop::option::of(key())), 0..40)
}

fn stage<R: KvRead + ?Sized>(txn: &mut Txn<'_, R>, writes: &[Write]) {
    for (t, k, v) in writes {
        match v {
            Some(v) => txn.put(*t, k.clone(), v.clone()),
            None => txn.delete(*t, k.clone()),
        }
    }
}

fn model(base: &MemKv, layers: &[&[Write]]) -> MemKv {
    let mut kv = base.clone();
    for layer in layers {
        let mut ws = WriteSet::default();
        for (t, k, v) in layer.iter() {
            match v {
                Some(v) => ws.put(*t, k.clone(), v.clone()),
                None => ws.delete(*t, k.clone()),
            }
        }
        kv.apply(ws);
    }
    kv
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn txn_reads_like_base_plus_writes(
        base_rows in rows(),
        outer in writes(),
        inner in writes(),
        scans in prop::collection::vec((table(), key(), prop::option::of(key()), 0usize..8), 1..12),
        gets in prop::collection::vec((table(), key()), 0..12),
    ) {
        let mut base = MemKv::default();
        for (t, k, v) in base_rows {
            base.rows.insert((t, k), v);
        }
        let mut txn = Txn::new(&base);
        stage(&mut txn, &outer);
        let expected_outer = model(&base, &[&outer]);
        let mut nested = Txn::new(&txn);
        stage(&mut nested, &inner);
        let expected_nested = model(&base, &[&outer, &inner]);

        for (t, start, end, limit) in &scans {
            let end = end.as_deref();
            prop_assert_eq!(
                txn.scan(*t, start, end, *limit).unwrap(),
                expected_outer.scan(*t, start, end, *limit).unwrap()
            );
            prop_assert_eq!(
                nested.scan(*t, start, end, *limit).unwrap(),
                expected_nested.scan(*t, start, end, *limit).unwrap()
            );
            prop_assert_eq!(
                nested.scan(*t, start, end, usize::MAX).unwrap(),
                expected_nested.scan(*t, start, end, usize::MAX).unwrap()
            );
        }
        for (t, k) in &gets {
            prop_assert_eq!(txn.get(*t, k).unwrap(), expected_outer.get(*t, k).unwrap());
            prop_assert_eq!(nested.get(*t, k).unwrap(), expected_nested.get(*t, k).unwrap());
        }
    }
}

#[test]
fn deletions_hide_base_rows_past_the_first_batch() {
    let mut base = MemKv::default();
    for i in 0u8..50 {
        base.rows.insert((Table::System, vec![i]), vec![i]);
    }
    let mut txn = Txn::new(&base);
    for i in 0u8..45 {
        txn.delete(Table::System, vec![i]);
    }
    txn.put(Table::System, vec![200], vec![1]);
    let got: Vec<u8> = txn
        .scan(Table::System, &[], None, 3)
        .unwrap()
        .into_iter()
        .map(|(k, _)| k[0])
        .collect();
    assert_eq!(got, vec![45, 46, 47]);
    let all = txn.scan(Table::System, &[], None, 100).unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(all.last().unwrap().0, vec![200]);
    // An empty or inverted range is empty, not a panic.
    assert!(
        txn.scan(Table::System, &[5], Some(&[5]), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        txn.scan(Table::System, &[6], Some(&[5]), 10)
            .unwrap()
            .is_empty()
    );
    // The table before System does not see System's rows.
    assert!(
        txn.scan(Table::SyncQueue, &[], None, 10)
            .unwrap()
            .is_empty()
    );
}
