//! The data path against a reference model: two gateways on one metadata cluster and one
//! bucket take random writes (unstable and FILE_SYNC), commits, truncations and reads of one
//! file; after every step each gateway must read exactly what the model says it sees
//! (committed bytes with its own uncommitted writes on top), and the object in S3 must equal
//! the committed bytes. Parts and blocks are small so that single PUTs, multipart uploads with
//! part copies, partial blocks and read-ahead all happen within a few hundred KiB.

mod common;

use bucketfs_block_cache::FsDisk;
use bucketfs_gateway::{DataConfig, GatewayFs};
use bucketfs_nfs_server::{AttrUpdate, CreateHow, FileSystem, NewAttrs, NewNode};
use bucketfs_object_store::{GetOptions, ObjectStore};
use bucketfs_runtime::Entropy;

/// What one gateway holds beyond the committed bytes.
#[derive(Default, Clone)]
struct Pending {
    /// Written, uncommitted bytes by offset.
    bytes: std::collections::BTreeMap<u64, u8>,
    /// The file's length when the first of them was written.
    base_len: u64,
}

impl Pending {
    fn end(&self) -> u64 {
        self.bytes.keys().next_back().map_or(0, |k| k + 1)
    }
}

#[derive(Default)]
struct Model {
    committed: Vec<u8>,
    pending: [Pending; 2],
}

impl Model {
    fn view(&self, g: usize) -> Vec<u8> {
        let p = &self.pending[g];
        let len = if p.bytes.is_empty() {
            self.committed.len() as u64
        } else {
            (self.committed.len() as u64).max(p.base_len).max(p.end())
        };
        let mut out = self.committed.clone();
        out.resize(len as usize, 0);
        for (&at, &b) in &p.bytes {
            out[at as usize] = b;
        }
        out
    }

    fn write(&mut self, g: usize, offset: u64, data: &[u8]) {
        if self.pending[g].bytes.is_empty() {
            self.pending[g].base_len = self.committed.len() as u64;
        }
        for (i, &b) in data.iter().enumerate() {
            self.pending[g].bytes.insert(offset + i as u64, b);
        }
    }

    fn commit(&mut self, g: usize) {
        let p = std::mem::take(&mut self.pending[g]);
        let len = (self.committed.len() as u64).max(p.end());
        self.committed.resize(len as usize, 0);
        for (at, b) in p.bytes {
            self.committed[at as usize] = b;
        }
    }
}

const ATTRS: NewAttrs = NewAttrs {
    mode: 0o644,
    uid: 0,
    gid: 0,
};

async fn read_all(fs: &GatewayFs<FsDisk>, fh: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let (chunk, eof) = fs.read(fh, out.len() as u64, 50_000).await.expect("read");
        out.extend_from_slice(&chunk);
        if eof || chunk.is_empty() {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_gateways_match_the_model() {
    let data = DataConfig {
        single_put_max: 256 << 10,
        part_size: 64 << 10,
        min_part_size: 64 << 10,
        ..DataConfig::default()
    };
    let s = common::start_small_parts(data.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let second = s.second_gateway_with(dir.path(), data).await;
    let gws = [&s.fs, &second];
    let rng = Entropy::seeded(0x5eed);
    for round in 0..6 {
        let name = format!("f{round}");
        let fh =
            s.fs.create(
                &s.fs.root(),
                &name,
                NewNode::File,
                ATTRS,
                CreateHow::Guarded,
            )
            .await
            .expect("create")
            .fh;
        let mut model = Model::default();
        for step in 0..40 {
            let g = rng.below(2) as usize;
            let what = rng.below(10);
            let ctx = format!("round {round} step {step} gateway {g} op {what}");
            match what {
                0..=4 => {
                    let offset = rng.below(600 << 10);
                    let len = 1 + rng.below(150 << 10) as usize;
                    let fill = (rng.below(250) + 1) as u8;
                    let bytes: Vec<u8> = (0..len).map(|i| fill.wrapping_add(i as u8)).collect();
                    let stable = rng.chance(0.3);
                    gws[g]
                        .write(&fh, offset, &bytes, stable)
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: write {e:?}"));
                    model.write(g, offset, &bytes);
                    if stable {
                        model.commit(g);
                    }
                }
                5 | 6 => {
                    gws[g]
                        .commit(&fh)
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: commit {e:?}"));
                    model.commit(g);
                }
                7 => {
                    // Truncations are made with nothing pending anywhere (an unlocked
                    // truncate racing another gateway's unflushed writes has no defined result).
                    for (i, gw) in gws.iter().enumerate() {
                        gw.commit(&fh).await.expect("commit before truncate");
                        model.commit(i);
                    }
                    let size = rng.below(700 << 10);
                    gws[g]
                        .setattr(
                            &fh,
                            AttrUpdate {
                                size: Some(size),
                                ..AttrUpdate::default()
                            },
                        )
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: truncate {e:?}"));
                    model.committed.resize(size as usize, 0);
                }
                _ => {
                    gws[g]
                        .close(&fh)
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: close {e:?}"));
                    model.commit(g);
                }
            }
            for (i, gw) in gws.iter().enumerate() {
                let got = read_all(gw, &fh).await;
                let want = model.view(i);
                assert!(
                    got == want,
                    "{ctx}: gateway {i} reads {} bytes, the model {} (first difference at {:?})",
                    got.len(),
                    want.len(),
                    got.iter().zip(&want).position(|(a, b)| a != b)
                );
                let size = gw.getattr(&fh).await.expect("getattr").size;
                assert_eq!(size, want.len() as u64, "{ctx}: gateway {i} size");
            }
            let in_s3 = s
                .store
                .inner()
                .get_range(&name, GetOptions::default())
                .await
                .map(|o| o.body.to_vec())
                .unwrap_or_default();
            assert!(
                in_s3 == model.committed,
                "{ctx}: S3 holds {} bytes, committed {}",
                in_s3.len(),
                model.committed.len()
            );
        }
    }
}
