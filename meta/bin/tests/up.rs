//! `bucketfs up` as a newcomer runs it: one command brings up a metadata node, a gateway and a
//! local S3 server; Ctrl-C stops it; a second start on the same data directory has the same
//! files with the same bytes; mistakes get one clear sentence.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bucketfs_nfs_client::{Client, ClientOptions};
use bucketfs_object_store::{ObjectStore, S3Config, S3Credentials, S3ObjectStore};
use common::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_bucketfs");

struct Ports {
    nfs: u16,
    meta: u16,
    metrics: u16,
    s3: u16,
}

impl Ports {
    fn new() -> Ports {
        Ports {
            nfs: free_port(),
            meta: free_port(),
            metrics: free_port(),
            s3: free_port(),
        }
    }

    fn args(&self) -> Vec<String> {
        [
            ("--nfs-port", self.nfs),
            ("--meta-port", self.meta),
            ("--metrics-port", self.metrics),
            ("--s3-port", self.s3),
        ]
        .iter()
        .flat_map(|(flag, port)| [flag.to_string(), port.to_string()])
        .collect()
    }
}

fn up(data: &Path, ports: &Ports, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("up")
        .arg("--data-dir")
        .arg(data)
        .args(ports.args())
        .args(extra)
        .env("BUCKETFS_LOG", "warn");
    if let Ok(moto) = bucketfs_object_store::moto::find_moto_server() {
        cmd.env("BUCKETFS_MOTO_SERVER", moto);
    }
    cmd
}

/// Starts `bucketfs up` and waits for its ready message; returns the process and what it
/// printed.
fn start(data: &Path, ports: &Ports) -> (Child, String) {
    let mut child = up(data, ports, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn bucketfs up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if line.starts_with("Stop with Ctrl-C") {
                let _ = tx.send(seen.clone());
            }
        }
    });
    let text = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("bucketfs up printed its ready message");
    (child, text)
}

fn interrupt(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    for _ in 0..300 {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "bucketfs up exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    panic!("bucketfs up did not stop on Ctrl-C");
}

async fn s3(ports: &Ports) -> S3ObjectStore {
    let mut c = S3Config::new("bucketfs", "us-east-1");
    c.endpoint_url = Some(format!("http://127.0.0.1:{}", ports.s3));
    c.force_path_style = true;
    c.credentials = Some(S3Credentials {
        access_key_id: "any".into(),
        secret_access_key: "any".into(),
        session_token: None,
    });
    S3ObjectStore::connect(c).await
}

#[tokio::test(flavor = "multi_thread")]
async fn up_serves_a_bucket_and_comes_back_with_the_same_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let ports = Ports::new();
    let (child, text) = start(&data, &ports);
    // The ready message gives the mount command, the S3 endpoint and bucket, the metrics URL
    // and how to stop.
    assert!(
        text.contains(&format!(
            "mount -t nfs4 -o vers=4.1,port={} 127.0.0.1:/ /mnt/bucketfs",
            ports.nfs
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("http://127.0.0.1:{}", ports.s3)),
        "{text}"
    );
    assert!(text.contains("in memory"), "{text}");
    assert!(
        text.contains(&format!("http://127.0.0.1:{}/metrics", ports.metrics)),
        "{text}"
    );
    let nfs = format!("127.0.0.1:{}", ports.nfs);
    let c = Client::connect(nfs.clone(), ClientOptions::default())
        .await
        .expect("mount");
    let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    c.mkdir(c.root(), "docs", 0o755).await.expect("mkdir");
    c.write_file("/docs/report.bin", &body)
        .await
        .expect("write");
    c.close().await;
    // Visible through the S3 API, with its metadata.
    let store = s3(&ports).await;
    let got = store
        .get_range("docs/report.bin", Default::default())
        .await
        .expect("get through S3");
    assert_eq!(got.body.to_vec(), body);
    assert_eq!(got.meta.metadata.mode, Some(0o100644));
    interrupt(child);

    // A second start, without the local cache: the bytes come back from the restored S3.
    std::fs::remove_dir_all(data.join("cache")).expect("drop the cache");
    let (child, text) = start(&data, &ports);
    assert!(text.contains("bucketfs is up"), "{text}");
    let c = Client::connect(nfs, ClientOptions::default())
        .await
        .expect("mount again");
    assert_eq!(c.read_file("/docs/report.bin").await.expect("read"), body);
    c.close().await;
    interrupt(child);
}

/// Runs `bucketfs up` expecting it to refuse; returns its stderr.
fn refused(cmd: &mut Command) -> String {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run bucketfs up");
    assert!(!out.status.success(), "bucketfs up should have refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_refuses_with_one_clear_sentence() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port in use.
    let ports = Ports::new();
    let busy = std::net::TcpListener::bind(("127.0.0.1", ports.nfs)).expect("bind");
    let err = refused(&mut up(&dir.path().join("a"), &ports, &[]));
    assert!(
        err.contains("already in use") && err.contains("--nfs-port"),
        "{err}"
    );
    drop(busy);

    // An S3 endpoint nobody answers.
    let ports = Ports::new();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let err = refused(
        up(&dir.path().join("b"), &ports, &["--s3-endpoint", &dead])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing"),
    );
    assert!(err.contains("cannot reach the S3 endpoint"), "{err}");
    // No credentials anywhere (none in the environment, no profile, no instance role).
    let err = refused(
        up(&dir.path().join("b"), &ports, &["--s3-endpoint", &dead])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
    );
    assert!(err.contains("no S3 credentials"), "{err}");

    // A bucket that exists without versioning.
    let moto = bucketfs_object_store::moto::MotoServer::shared()
        .await
        .expect("moto");
    let bucket = bucketfs_object_store::moto::MotoServer::unique_bucket_name("plain");
    moto.bucket(&bucket, false).await.expect("bucket");
    let err = refused(
        up(
            &dir.path().join("c"),
            &ports,
            &["--s3-endpoint", moto.endpoint(), "--bucket", &bucket],
        )
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing"),
    );
    assert!(err.contains("exists without versioning"), "{err}");

    // A data directory that belongs to another cluster.
    let foreign = dir.path().join("foreign");
    let meta_port = free_port();
    let mut node = Command::new(BIN)
        .args(["meta", "serve", "--id", "1", "--cluster-id", "someone-else"])
        .args(["--listen", &format!("127.0.0.1:{meta_port}")])
        .arg("--data-dir")
        .arg(foreign.join("meta"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("meta serve");
    // It listens only once its store (with its identity) is written.
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", meta_port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = node.kill();
    let _ = node.wait();
    let err = refused(
        up(&foreign, &Ports::new(), &["--s3-endpoint", moto.endpoint()])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing"),
    );
    assert!(err.contains("belongs to cluster"), "{err}");

    // A config file with a mistake names the setting.
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "nfs-prot = 2049\n").expect("write");
    let err = refused(&mut up(
        &dir.path().join("d"),
        &Ports::new(),
        &["--config", file.to_str().unwrap()],
    ));
    assert!(err.contains("nfs-prot"), "{err}");
}
