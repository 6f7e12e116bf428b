//! `bucketfs bench s3`: the S3 server itself, measured with the requests the gateway makes for
//! `bench nfs`'s workloads, so the two can be set side by side: a 4 KiB PUT per created file,
//! a multipart upload in the gateway's part size with its upload concurrency for a large
//! sequential write, and 1 MiB ranged GETs for reads. What the gateway cannot beat is here.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bucketfs_object_store::{
    CompletedPart, GetOptions, ObjectStore, Precondition, PutOptions, S3Config, S3Credentials,
    S3ObjectStore, UserMetadata,
};
use bucketfs_runtime::{Clock, SystemClock};
use bytes::Bytes;
use clap::Args;
use futures::stream::{self, StreamExt};

use crate::bench_nfs::{Row, print_rows};

#[derive(Args)]
pub struct BenchS3Args {
    /// The S3 endpoint (http://host:port).
    #[arg(long, env = "BUCKETFS_S3_ENDPOINT")]
    s3_endpoint: String,
    /// An existing bucket to write the benchmark's objects into (under bench-s3/).
    #[arg(long)]
    bucket: String,
    #[arg(long, default_value = "us-east-1")]
    s3_region: String,
    /// Objects in the small-PUT benchmark.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Requests in flight in the small-PUT benchmark.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Size of the large object, MiB.
    #[arg(long, default_value_t = 256)]
    size_mib: u64,
    /// Parts uploaded at once (the gateway's default).
    #[arg(long, default_value_t = 4)]
    part_concurrency: usize,
    /// GETs in flight in the read benchmark.
    #[arg(long, default_value_t = 8)]
    depth: usize,
}

const PART: usize = 8 << 20;
const BLOCK: u64 = 1 << 20;

pub async fn run(args: BenchS3Args) -> anyhow::Result<ExitCode> {
    let mut config = S3Config::new(&args.bucket, &args.s3_region);
    config.endpoint_url = Some(args.s3_endpoint.clone());
    config.force_path_style = true;
    if let (Ok(id), Ok(secret)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        config.credentials = Some(S3Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: None,
        });
    }
    let store: Arc<dyn ObjectStore> = Arc::new(S3ObjectStore::connect(config).await);
    store
        .bucket_versioning()
        .await
        .with_context(|| format!("bucket {} at {}", args.bucket, args.s3_endpoint))?;
    let clock = SystemClock;
    println!(
        "bucketfs bench s3: {} bucket {}, {} PUTs of 4 KiB at {} in flight, {} MiB in {} MiB parts \
         ({} at once), 1 MiB GETs ({} in flight)",
        args.s3_endpoint,
        args.bucket,
        args.count,
        args.concurrency,
        args.size_mib,
        PART >> 20,
        args.part_concurrency,
        args.depth
    );

    let mut put = Row::new("put_4k", "put 4k");
    let small = Bytes::from(vec![7u8; 4096]);
    let started = clock.now();
    let results: Vec<Result<Duration, String>> = stream::iter(0..args.count)
        .map(|i| {
            let store = Arc::clone(&store);
            let body = small.clone();
            async move {
                let t = SystemClock.now();
                store
                    .put(&format!("bench-s3/small/{i}"), body, PutOptions::default())
                    .await
                    .map(|_| SystemClock.now().duration_since(t))
                    .map_err(|e| e.to_string())
            }
        })
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    for r in results {
        match r {
            Ok(d) => put.latencies.push(d),
            Err(e) => put.fail(e),
        }
    }
    put.finish(started, &clock);

    let size = (args.size_mib << 20) as usize;
    let body = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let mut upload = Row::new("multipart", "multipart");
    upload.bytes = Some(size as u64);
    let started = clock.now();
    let key = "bench-s3/large";
    let id = store
        .create_multipart(key, UserMetadata::default())
        .await
        .context("CreateMultipartUpload")?;
    let parts: Vec<(u32, Bytes)> = (0..size.div_ceil(PART))
        .map(|i| {
            (
                i as u32 + 1,
                body.slice(i * PART..((i + 1) * PART).min(size)),
            )
        })
        .collect();
    let done: Vec<Result<(CompletedPart, Duration), String>> = stream::iter(parts)
        .map(|(n, part)| {
            let store = Arc::clone(&store);
            let id = id.clone();
            async move {
                let t = SystemClock.now();
                store
                    .upload_part(key, &id, n, part)
                    .await
                    .map(|etag| {
                        (
                            CompletedPart {
                                part_number: n,
                                etag,
                            },
                            SystemClock.now().duration_since(t),
                        )
                    })
                    .map_err(|e| e.to_string())
            }
        })
        .buffered(args.part_concurrency.max(1))
        .collect()
        .await;
    let mut completed = Vec::new();
    for r in done {
        match r {
            Ok((p, d)) => {
                completed.push(p);
                upload.latencies.push(d);
            }
            Err(e) => upload.fail(e),
        }
    }
    store
        .complete_multipart(key, &id, &completed, Precondition::None)
        .await
        .context("CompleteMultipartUpload")?;
    upload.finish(started, &clock);

    let mut get = Row::new("get_1m", "get 1 MiB");
    get.bytes = Some(size as u64);
    let started = clock.now();
    let blocks = (size as u64).div_ceil(BLOCK);
    let got: Vec<Result<Duration, String>> = stream::iter(0..blocks)
        .map(|i| {
            let store = Arc::clone(&store);
            async move {
                let t = SystemClock.now();
                let opts = GetOptions {
                    range: Some(i * BLOCK..((i + 1) * BLOCK).min(size as u64)),
                    ..GetOptions::default()
                };
                store
                    .get_range(key, opts)
                    .await
                    .map(|_| SystemClock.now().duration_since(t))
                    .map_err(|e| e.to_string())
            }
        })
        .buffered(args.depth.max(1))
        .collect()
        .await;
    for r in got {
        match r {
            Ok(d) => get.latencies.push(d),
            Err(e) => get.fail(e),
        }
    }
    get.finish(started, &clock);

    let rows = [put, upload, get];
    print_rows(&rows);
    for i in 0..args.count {
        let _ = store.delete(&format!("bench-s3/small/{i}"), None).await;
    }
    let _ = store.delete(key, None).await;
    Ok(if rows.iter().any(|r| r.errors > 0) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
