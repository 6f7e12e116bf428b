//! Gateways are disposable (DESIGN.md invariants 1, 3 and 6), with the real Linux NFS client.
//!
//! Two gateways on one 3-node metadata cluster, behind haproxy in TCP mode (standing in for a
//! cloud network load balancer: it health-checks the gateways every 300 ms and sends new
//! connections to the live ones). A qemu guest (jepsen/guest) mounts haproxy's port.
//!
//! * `failover_under_writes`: the guest writes and fsyncs files one after another and records
//!   each one whose fsync returned; the test SIGKILLs the gateway serving it in the middle. The
//!   hard mount carries on through the other gateway (new connection, BADSESSION, a new session
//!   for the same client id, uncommitted writes sent again because the write verifier
//!   changed) and the workload ends without an error. Every acknowledged file is then in S3
//!   with exactly its bytes.
//! * `close_to_open_across_gateways`: the guest on one gateway and the in-process NFS client
//!   (`bucketfs-nfs-client`) on the other take turns writing one file; after each close the
//!   other side's open sees every byte, in both directions, and S3 holds the last version.
//!
//! Needs haproxy (`apt-get install haproxy`; .ci/run installs it) and the guest's artifacts
//! (`jepsen/guest/build-guest.sh`). Each test takes about a minute on two cores.

mod common;
#[path = "common/guest.rs"]
mod guest;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bucketfs_nfs_client::{Client, ClientOptions, OpenOptions, StableHow};
use bucketfs_telemetry::metrics::names;
use common::free_port;
use common::system::System;
use guest::{Guest, GuestOptions, sha256_hex};
use tokio::time::Instant;

// -------------------------------------------------------------------- haproxy

fn find_haproxy() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter()
        .map(|d| d.join("haproxy"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("haproxy is not installed: run apt-get install haproxy (.ci/run installs it)")
        })
}

/// One `show stat` row of a backend server.
#[derive(Debug, Clone)]
struct ServerStat {
    name: String,
    status: String,
    /// Sessions open now.
    scur: u64,
    /// Sessions ever.
    stot: u64,
}

struct Haproxy {
    proc: guest::Proc,
    port: u16,
    sock: PathBuf,
    /// gw0, gw1, ...: the gateway of the same index.
    servers: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// haproxy on a free 127.0.0.1 port in front of `backends` (server `gw<i>` is
    /// `backends[i]`); waits until every backend's health check is UP.
    async fn start(backends: &[String]) -> Haproxy {
        let bin = find_haproxy();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let sock = dir.path().join("stats.sock");
        let servers: Vec<String> = (0..backends.len()).map(|i| format!("gw{i}")).collect();
        let mut cfg = format!(
            "global\n\
             \x20   stats socket {sock} mode 600 level admin\n\
             \x20   maxconn 256\n\
             defaults\n\
             \x20   mode tcp\n\
             \x20   timeout connect 1s\n\
             \x20   timeout check 1s\n\
             \x20   timeout client 1h\n\
             \x20   timeout server 1h\n\
             \x20   retries 3\n\
             \x20   option redispatch\n\
             frontend nfs\n\
             \x20   bind 127.0.0.1:{port}\n\
             \x20   default_backend gateways\n\
             backend gateways\n\
             \x20   balance roundrobin\n\
             \x20   default-server check inter 300ms fastinter 300ms downinter 300ms fall 2 rise 2 \
             on-marked-down shutdown-sessions\n",
            sock = sock.display()
        );
        for (name, addr) in servers.iter().zip(backends) {
            cfg.push_str(&format!("    server {name} {addr}\n"));
        }
        let cfg_path = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg_path, &cfg).expect("haproxy.cfg");
        let mut cmd = Command::new(&bin);
        cmd.arg("-db").arg("-f").arg(&cfg_path);
        let proc = guest::Proc::spawn(cmd, &dir.path().join("haproxy.log"), "[haproxy] ");
        let h = Haproxy {
            proc,
            port,
            sock,
            servers,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(stats) = h.try_stats().await
                && stats.len() == backends.len()
                && stats.iter().all(|s| s.status == "UP")
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy did not come up with every backend UP: {:?}\nconfig:\n{cfg}\nlog:\n{}",
                h.try_stats().await,
                std::fs::read_to_string(&h.proc.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        h
    }

    async fn try_stats(&self) -> Option<Vec<ServerStat>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::UnixStream::connect(&self.sock).await.ok()?;
        s.write_all(b"show stat\n").await.ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let mut lines = out.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (px, sv, scur, stot, status) = (
            col("pxname")?,
            col("svname")?,
            col("scur")?,
            col("stot")?,
            col("status")?,
        );
        Some(
            lines
                .map(|l| l.split(',').collect::<Vec<_>>())
                .filter(|f| {
                    f.len() > status
                        && f[px] == "gateways"
                        && f[sv] != "BACKEND"
                        && f[sv] != "FRONTEND"
                })
                .map(|f| ServerStat {
                    name: f[sv].to_owned(),
                    status: f[status].to_owned(),
                    scur: f[scur].parse().unwrap_or(0),
                    stot: f[stot].parse().unwrap_or(0),
                })
                .collect(),
        )
    }

    async fn stats(&self) -> Vec<ServerStat> {
        self.try_stats().await.expect("haproxy stats socket")
    }

    /// The index of the gateway that holds the guest's connection (the only client
    /// connection through haproxy), waiting up to `limit` for there to be exactly one.
    async fn serving(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let stats = self.stats().await;
            let busy: Vec<&ServerStat> = stats.iter().filter(|s| s.scur > 0).collect();
            if let [one] = busy.as_slice() {
                return self
                    .servers
                    .iter()
                    .position(|n| *n == one.name)
                    .expect("a server of ours");
            }
            assert!(
                Instant::now() < deadline,
                "haproxy does not show exactly one backend with the guest's connection: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

// -------------------------------------------------------------------- helpers

fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Two gateways behind haproxy on a 3-node metadata cluster.
async fn deployment() -> (System, Haproxy) {
    let mut sys = System::start(3).await;
    let a = sys.start_gateway(&[]).await;
    let b = sys.start_gateway(&[]).await;
    let haproxy = Haproxy::start(&[sys.gateway_addr(a), sys.gateway_addr(b)]).await;
    println!(
        "gateways {} and {} behind haproxy 127.0.0.1:{}; meta {}; bucket {}",
        sys.gateway_addr(a),
        sys.gateway_addr(b),
        haproxy.port,
        sys.meta_addrs(),
        sys.bucket
    );
    (sys, haproxy)
}

fn failure_context(sys: &System, guest: &Guest) -> String {
    let logs: Vec<String> = (0..sys.gateways.len())
        .map(|i| {
            format!(
                "gateway {i} log (tail):\n{}",
                guest::tail(&sys.gateway_log(i), 25)
            )
        })
        .collect();
    format!(
        "\nguest console (tail):\n{}\n{}\nguest logs: {}",
        guest.console_tail(60),
        logs.join("\n"),
        guest.dir.display()
    )
}

/// `ACK n name size uptime` lines of failover-writes.sh.
struct Ack {
    name: String,
    uptime: f64,
}

fn acks(guest: &Guest) -> Vec<Ack> {
    guest
        .lines_with("ACK ")
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(Ack {
                name: f.get(2)?.to_string(),
                uptime: f.get(4)?.parse().ok()?,
            })
        })
        .collect()
}

// -------------------------------------------------------------------- (a)

const FILES: usize = 40;
/// Files acknowledged before the kill.
const KILL_AFTER: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failover_under_writes() {
    let started = Instant::now();
    guest::require_artifacts();
    find_haproxy();
    let (mut sys, haproxy) = deployment().await;
    let runs = guest::runs_dir("failover-writes");
    let mut guest = Guest::start(
        haproxy.port,
        "failover-writes.sh",
        &runs,
        GuestOptions {
            env: vec![
                format!("FO_FILES={FILES}"),
                "FO_MIN=1000".into(),
                "FO_MAX=2500000".into(),
            ],
            extra: vec![],
            mount_opts: "",
            timeout: Duration::from_secs(400),
        },
    );

    // Let the workload get going, then kill the gateway that carries it.
    let deadline = Instant::now() + Duration::from_secs(180);
    while acks(&guest).len() < KILL_AFTER {
        if Instant::now() > deadline || guest.proc.wait(Duration::ZERO).await.is_some() {
            panic!(
                "the guest acknowledged {} files, not {KILL_AFTER}, before the kill{}",
                acks(&guest).len(),
                failure_context(&sys, &guest)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let victim = haproxy.serving(Duration::from_secs(10)).await;
    let survivor = 1 - victim;
    // Kill it while it holds written but uncommitted data (a file over wsize goes out as
    // UNSTABLE WRITEs, then COMMIT): the client must notice the new gateway's write verifier
    // and send those WRITEs again. Poll its dirty-bytes gauge until it is non-zero.
    let deadline = Instant::now() + Duration::from_secs(90);
    let dirty = loop {
        let m = sys.gateway_metrics(victim).await;
        let dirty = metric_sum(&m, names::GATEWAY_DIRTY_BYTES);
        if dirty > 0.0 {
            break dirty;
        }
        if Instant::now() > deadline || guest.proc.wait(Duration::ZERO).await.is_some() {
            panic!(
                "gateway {victim} never held uncommitted data while the guest wrote ({} files \
                 acknowledged){}",
                acks(&guest).len(),
                failure_context(&sys, &guest)
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let mut before = Vec::new();
    for i in 0..2 {
        before.push(
            metric_sum(
                &sys.gateway_metrics(i).await,
                names::GATEWAY_NFS_COMPOUNDS_TOTAL,
            ) + 0.0,
        );
    }
    let at_kill = acks(&guest);
    let acked_at_kill = at_kill.len();
    let last_before = at_kill.last().map(|a| a.name.clone()).unwrap_or_default();
    sys.kill_gateway(victim);
    let killed_at = Instant::now();
    println!(
        "SIGKILLed gateway {victim} ({}) holding {dirty} bytes of uncommitted writes, after \
         {acked_at_kill} acknowledged files (the last {last_before}); NFS compounds so far: \
         gateway 0 {}, gateway 1 {}",
        sys.gateway_addr(victim),
        before[0],
        before[1]
    );
    assert!(
        before[victim] > before[survivor],
        "haproxy says gateway {victim} serves the guest, but it answered fewer compounds \
         ({}) than gateway {survivor} ({})",
        before[victim],
        before[survivor]
    );

    let code = guest.finish(Duration::from_secs(420)).await;
    let all = acks(&guest);
    let summary = guest
        .lines_with("failover-writes: ")
        .last()
        .cloned()
        .unwrap_or_default();
    let fails = guest.lines_with("FAIL");
    assert!(
        code == Some(0) && fails.is_empty(),
        "the write workload did not get through the failover: exit {code:?}, {summary:?}, \
         failures {fails:#?}{}",
        failure_context(&sys, &guest)
    );
    assert_eq!(
        all.len(),
        FILES,
        "acknowledged files{}",
        failure_context(&sys, &guest)
    );
    let after_kill = all.len() - acked_at_kill;
    assert!(
        after_kill >= FILES / 2,
        "only {after_kill} files were written after the kill: it did not land in the middle"
    );
    // The longest pause between two acknowledgements: the failover.
    let gap = all
        .windows(2)
        .map(|w| w[1].uptime - w[0].uptime)
        .fold(0.0, f64::max);

    // The connection moved: haproxy saw the victim go down and the survivor carry the guest.
    let stats = haproxy.stats().await;
    let st = |i: usize| stats.iter().find(|s| s.name == format!("gw{i}")).cloned();
    assert!(
        st(victim).is_some_and(|s| s.status.starts_with("DOWN")),
        "haproxy does not show the killed gateway down: {stats:?}"
    );
    assert!(
        st(survivor).is_some_and(|s| s.stot >= 1),
        "haproxy never sent a connection to the surviving gateway: {stats:?}"
    );
    let survivor_compounds = metric_sum(
        &sys.gateway_metrics(survivor).await,
        names::GATEWAY_NFS_COMPOUNDS_TOTAL,
    );
    assert!(
        survivor_compounds > before[survivor],
        "the surviving gateway answered no compounds after the kill"
    );

    // Every acknowledged file, byte for byte, in S3.
    let acked = std::fs::read_to_string(guest.results().join("acked.txt")).unwrap_or_else(|e| {
        panic!(
            "no acked.txt from the guest: {e}{}",
            failure_context(&sys, &guest)
        )
    });
    let mut problems = Vec::new();
    let mut checked = 0;
    for line in acked.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, sum, size] = f[..] else {
            problems.push(format!("acked.txt line {line:?}"));
            continue;
        };
        let key = format!("failover/{name}");
        match sys.object_bytes(&key).await {
            None => problems.push(format!("{key}: acknowledged, but no object in S3")),
            Some(bytes) => {
                let got = sha256_hex(&bytes);
                if got != sum || bytes.len().to_string() != size {
                    problems.push(format!(
                        "{key}: S3 has {} bytes with sha256 {got}; the guest's fsync returned for \
                         {size} bytes with sha256 {sum}",
                        bytes.len()
                    ));
                }
            }
        }
        checked += 1;
    }
    assert!(
        problems.is_empty(),
        "acknowledged writes lost or changed in S3:\n  {}{}",
        problems.join("\n  "),
        failure_context(&sys, &guest)
    );
    assert_eq!(checked, FILES);
    let data: u64 = acked
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u64>().ok())
        .sum();
    let stats = std::fs::read_to_string(guest.results().join("mountstats.txt")).unwrap_or_default();
    let write_stats = stats
        .lines()
        .find(|l| l.trim_start().starts_with("WRITE:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    println!(
        "the client's WRITE statistics (ops trans timeouts bytes_sent ...): {write_stats}; \
         {data} bytes of file data"
    );
    println!(
        "failover under writes: {FILES} files acknowledged ({acked_at_kill} before the kill of \
         gateway {victim}, {after_kill} after) and all in S3 byte for byte; longest pause \
         between two acknowledgements {gap:.1} s; guest finished {:.0} s after the kill; whole \
         test {} s",
        killed_at.elapsed().as_secs_f64(),
        started.elapsed().as_secs()
    );
}

// -------------------------------------------------------------------- (b)

/// `PREFIX sha256 size` from the guest's console.
async fn wait_sum(guest: &mut Guest, prefix: &str, sys: &System) -> (String, u64) {
    let line = guest
        .wait_line(prefix, Duration::from_secs(180))
        .await
        .unwrap_or_else(|| {
            panic!(
                "no {prefix:?} line from the guest{}",
                failure_context(sys, guest)
            )
        });
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[1].to_owned(), f[2].parse().expect("size"))
}

/// Creates the marker file `c2o/<name>` whole: written and closed under another name, then
/// renamed, so the guest never opens it half-written.
async fn publish(host: &Client, name: &str, content: &[u8]) {
    let tmp = format!("/c2o/.{name}.tmp");
    host.write_file(&tmp, content).await.expect("write marker");
    let (dir, _) = host.lookup("/c2o").await.expect("lookup c2o");
    host.rename(&dir, &format!(".{name}.tmp"), &dir, name)
        .await
        .expect("rename marker");
}

async fn host_client(addr: &str) -> Client {
    let opts = ClientOptions {
        machine_name: "failover-test".into(),
        ..ClientOptions::default()
    };
    Client::connect(addr.to_owned(), opts)
        .await
        .unwrap_or_else(|e| panic!("NFS client to {addr}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn close_to_open_across_gateways() {
    let started = Instant::now();
    guest::require_artifacts();
    find_haproxy();
    let (sys, haproxy) = deployment().await;
    let runs = guest::runs_dir("close-to-open");
    let size: u64 = 300_000;
    let mut guest = Guest::start(
        haproxy.port,
        "close-to-open.sh",
        &runs,
        GuestOptions {
            env: vec![format!("C2O_SIZE={size}"), "C2O_APPEND=5000".into()],
            extra: vec![],
            mount_opts: "lookupcache=positive",
            timeout: Duration::from_secs(400),
        },
    );

    // 1. The kernel client wrote and closed the file through one gateway ...
    let (guest_sum, guest_size) = wait_sum(&mut guest, "C2O_WROTE ", &sys).await;
    assert_eq!(guest_size, size);
    let kernel_gw = haproxy.serving(Duration::from_secs(10)).await;
    let other = 1 - kernel_gw;
    println!(
        "the guest is on gateway {kernel_gw}; the in-process client uses gateway {other} ({})",
        sys.gateway_addr(other)
    );
    // ... and a client of the other gateway opens it and sees every byte.
    let host = host_client(&sys.gateway_addr(other)).await;
    let seen = host
        .read_file("/c2o/data")
        .await
        .expect("read through the other gateway");
    assert_eq!(
        (seen.len() as u64, sha256_hex(&seen)),
        (size, guest_sum.clone()),
        "the file as the other gateway serves it right after the kernel client closed it"
    );

    // 2. That client overwrites a range crossing the end, closes, and tells the guest.
    let (off, len) = (250_000u64, 100_000usize);
    let patch: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8 ^ 0x5a).collect();
    let (fh, _) = host.lookup("/c2o/data").await.expect("lookup");
    let open = host
        .open_fh(&fh, &OpenOptions::write())
        .await
        .expect("open for write");
    let mut done = 0usize;
    while done < len {
        let chunk = &patch[done..(done + 65_536).min(len)];
        let w = host
            .write(
                &fh,
                &open.stateid,
                off + done as u64,
                chunk,
                StableHow::FileSync,
            )
            .await
            .expect("write");
        assert!(w.count > 0, "WRITE wrote nothing");
        done += w.count as usize;
    }
    host.close_file(&fh, &open.stateid).await.expect("close");
    let mut expect = seen[..off as usize].to_vec();
    expect.extend_from_slice(&patch);
    let expect_sum = sha256_hex(&expect);
    publish(
        &host,
        "host-done",
        format!("{expect_sum} {}", expect.len()).as_bytes(),
    )
    .await;

    // 3. The guest reopened the file (its page cache held its own write), compared it with
    //    the host's, appended, closed; the other gateway must serve the append.
    let (final_sum, final_size) = wait_sum(&mut guest, "C2O_APPENDED ", &sys).await;
    assert_eq!(
        haproxy.serving(Duration::from_secs(5)).await,
        kernel_gw,
        "the guest moved to another gateway: the test no longer spans two"
    );
    let now = host.read_file("/c2o/data").await.expect("read the append");
    assert_eq!(
        (now.len() as u64, sha256_hex(&now)),
        (final_size, final_sum.clone()),
        "the file as gateway {other} serves it after the kernel client appended through \
         gateway {kernel_gw}"
    );
    assert_eq!(
        &now[..expect.len()],
        &expect[..],
        "the append kept the host's bytes"
    );
    publish(&host, "host-checked", b"ok").await;

    let code = guest.finish(Duration::from_secs(240)).await;
    let passes = guest.lines_with("PASS ");
    let fails = guest.lines_with("FAIL ");
    assert!(
        code == Some(0)
            && fails.is_empty()
            && passes.iter().any(|l| l.contains("c2o_sees_other_gateway")),
        "the kernel client's side: exit {code:?}, passes {passes:?}, failures {fails:?}{}",
        failure_context(&sys, &guest)
    );

    // S3 has the last close's bytes.
    let object = sys.object_bytes("c2o/data").await.expect("c2o/data object");
    assert_eq!(
        (object.len() as u64, sha256_hex(&object)),
        (final_size, final_sum),
        "the object of c2o/data after the last close"
    );
    host.close().await;
    println!(
        "close-to-open across gateways {kernel_gw} (kernel client) and {other} (in-process \
         client): {} checks in the guest, 3 on the host; whole test {} s",
        passes.len(),
        started.elapsed().as_secs()
    );
}
