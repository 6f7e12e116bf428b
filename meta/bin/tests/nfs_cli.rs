//! `bucketfs ls|cat|cp|put|rm|mkdir|stat` and `bucketfs bench nfs`, run as the built binary
//! against the in-memory NFS server on 127.0.0.1.

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use bucketfs_nfs_server::{MemClientRegistry, MemFs, MemOpenStore, NfsServer, ServerConfig, serve};
use bucketfs_runtime::SystemClock;
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_bucketfs");

async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(NfsServer::new(
        MemFs::new(),
        Arc::new(MemClientRegistry::new(7)),
        Arc::new(MemOpenStore::new(7)),
        Arc::new(SystemClock),
        ServerConfig::default(),
        *b"cliverif",
        7,
    ));
    tokio::spawn(serve(listener, server, std::future::pending()));
    addr
}

/// Runs `bucketfs ARGS --target ADDR` (blocking; the server runs on the runtime's workers).
fn run(addr: SocketAddr, args: &[&str]) -> Output {
    run_stdin(addr, args, None)
}

fn run_stdin(addr: SocketAddr, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--target")
        .arg(addr.to_string())
        .arg("--timeout")
        .arg("20")
        .env_remove("BUCKETFS_NFS")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("bucketfs runs");
    if let Some(data) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Exit code 1 and exactly one error line.
fn fails(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    err.trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_commands_round_trip() {
    let addr = server().await;
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("data.bin");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&local, &data).unwrap();

    ok(&run(addr, &["mkdir", "-p", "/a/b/c"]));
    ok(&run(addr, &["mkdir", "-p", "/a/b"])); // existing: fine with -p
    let err = fails(&run(addr, &["mkdir", "/a"]));
    assert_eq!(err, "bucketfs: /a: file exists (NFS4ERR_EXIST)");
    let err = fails(&run(addr, &["mkdir", "/x/y"]));
    assert_eq!(
        err,
        "bucketfs: /x/y: no such file or directory (NFS4ERR_NOENT)"
    );

    ok(&run(addr, &["put", local.to_str().unwrap(), "/a/b/"]));
    ok(&run(addr, &["put", "-", "/a/stdin.txt"]));
    assert_eq!(
        ok(&run_stdin(
            addr,
            &["put", "-", "/a/hello"],
            Some(b"hello\n")
        )),
        ""
    );

    let cat = run(addr, &["cat", "/a/b/data.bin"]);
    assert!(cat.status.success());
    assert_eq!(cat.stdout, data);
    assert_eq!(
        ok(&run(addr, &["cat", "/a/hello", "/a/hello"])),
        "hello\nhello\n"
    );

    assert_eq!(ok(&run(addr, &["ls", "/a"])), "b\nhello\nstdin.txt\n");
    let long = ok(&run(addr, &["ls", "-l", "/a/b"]));
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines.len(), 2, "{long}");
    assert!(
        lines[0].starts_with("drwxr-xr-x") && lines[0].ends_with(" c"),
        "{long}"
    );
    assert!(
        lines[1].starts_with("-rw-") && lines[1].contains(" 3000000 "),
        "{long}"
    );
    assert!(lines[1].ends_with(" data.bin"), "{long}");
    assert_eq!(ok(&run(addr, &["ls", "/a/hello"])), "hello\n");

    let stat = ok(&run(addr, &["stat", "/a/b/data.bin"]));
    for want in [
        "File: /a/b/data.bin",
        "Type: regular file",
        "Size: 3000000",
        "Owner: 0  Group: 0",
        "Modify: ",
        "Change attribute: ",
    ] {
        assert!(stat.contains(want), "{want:?} in {stat}");
    }
    let err = fails(&run(addr, &["stat", "/a/nope"]));
    assert_eq!(
        err,
        "bucketfs: /a/nope: no such file or directory (NFS4ERR_NOENT)"
    );
    let err = fails(&run(addr, &["cat", "/a/b"]));
    assert!(err.starts_with("bucketfs: /a/b: is a directory"), "{err}");

    // cp: remote to remote (into a directory), download, upload.
    ok(&run(addr, &["cp", "/a/b/data.bin", "/a/b/c"]));
    assert_eq!(run(addr, &["cat", "/a/b/c/data.bin"]).stdout, data);
    let back = tmp.path().join("back.bin");
    ok(&run(
        addr,
        &[
            "cp",
            "/a/b/c/data.bin",
            &format!("local:{}", back.display()),
        ],
    ));
    assert_eq!(std::fs::read(&back).unwrap(), data);
    ok(&run(
        addr,
        &["cp", &format!("local:{}", local.display()), "/a/up.bin"],
    ));
    assert_eq!(run(addr, &["cat", "/a/up.bin"]).stdout, data);
    let err = fails(&run(
        addr,
        &[
            "cp",
            "/a/missing",
            &format!("local:{}", tmp.path().display()),
        ],
    ));
    assert_eq!(
        err,
        "bucketfs: /a/missing: no such file or directory (NFS4ERR_NOENT)"
    );
    assert!(
        !tmp.path().join("missing").exists(),
        "no empty local file left behind"
    );
    let err = fails(&run(addr, &["cp", "local:/a", "local:/b"]));
    assert!(err.contains("both paths are local"), "{err}");

    // rm: files, directories only with -r.
    let err = fails(&run(addr, &["rm", "/a/b"]));
    assert_eq!(err, "bucketfs: /a/b: is a directory (NFS4ERR_ISDIR)");
    ok(&run(addr, &["rm", "/a/hello"]));
    let err = fails(&run(addr, &["rm", "/a/hello"]));
    assert_eq!(
        err,
        "bucketfs: /a/hello: no such file or directory (NFS4ERR_NOENT)"
    );
    ok(&run(addr, &["rm", "-r", "/a"]));
    assert_eq!(ok(&run(addr, &["ls", "/"])), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_one_line_and_exit_1() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let err = fails(&run(addr, &["ls", "/"]));
    assert!(
        err.starts_with(&format!("bucketfs: 127.0.0.1:{port}: cannot connect")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_nfs_runs_and_compares() {
    let a = server().await;
    let b = server().await;
    let out = Command::new(BIN)
        .args([
            "bench",
            "nfs",
            "--target",
            &a.to_string(),
            "--compare",
            &b.to_string(),
        ])
        .args([
            "--count",
            "40",
            "--stat-ops",
            "100",
            "--concurrency",
            "4",
            "--size-mib",
            "3",
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    let results: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("\"kind\":\"result\""))
        .collect();
    let ratios: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("\"kind\":\"ratio\""))
        .collect();
    assert_eq!(results.len(), 10, "{stdout}");
    assert_eq!(ratios.len(), 5, "{stdout}");
    for name in [
        "create_4k",
        "stat",
        "seq_write",
        "first_read",
        "second_read",
    ] {
        let row = results
            .iter()
            .find(|l| l.contains(&format!("\"benchmark\":\"{name}\"")))
            .unwrap_or_else(|| panic!("{name} in {stdout}"));
        assert!(row.contains("\"errors\":0"), "{row}");
        assert!(row.starts_with('{') && row.ends_with('}'), "{row}");
    }
    assert!(
        stdout.contains("\"benchmark\":\"create_4k\",\"label\":\"create 4k\",\"unit\":\"ops/s\"")
    );
    assert!(stdout.contains("\"ops\":40,"), "{stdout}");
    assert!(stdout.contains("\"ops\":100,"), "{stdout}");
    assert!(stdout.contains("\"bytes\":3145728"), "{stdout}");

    // The human table, and the directory is cleaned up afterwards.
    let out = Command::new(BIN)
        .args(["bench", "nfs", "--target", &a.to_string()])
        .args([
            "--count",
            "20",
            "--stat-ops",
            "50",
            "--concurrency",
            "2",
            "--size-mib",
            "2",
        ])
        .output()
        .unwrap();
    let table = ok(&out);
    for row in [
        "create 4k",
        "stat",
        "seq write",
        "first read",
        "second read",
        "ops/s",
        "MB/s",
    ] {
        assert!(table.contains(row), "{row:?} in {table}");
    }
    assert_eq!(ok(&run(a, &["ls", "/"])), "");
}
