//! A cluster of real `bucketfs meta serve` processes on 127.0.0.1, for tests.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use bucketfs_meta_client::{ClientOptions, MetaClient, Role};

pub mod proxy;
pub mod system;

const BIN: &str = env!("CARGO_BIN_EXE_bucketfs");
const CLUSTER_ID: &str = "test-cluster";
/// Generous: CI machines have two cores shared by everything in the test.
const WAIT: Duration = Duration::from_secs(60);

pub struct Cluster {
    dir: tempfile::TempDir,
    addrs: BTreeMap<u64, String>,
    children: BTreeMap<u64, Child>,
    extra_args: Vec<String>,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub async fn client_for(addr: &str) -> MetaClient {
    MetaClient::connect(vec![addr.to_owned()], options())
        .await
        .expect("client")
}

fn options() -> ClientOptions {
    ClientOptions {
        call_timeout: Duration::from_secs(30),
        rpc_timeout: Duration::from_secs(3),
        ..ClientOptions::default()
    }
}

impl Cluster {
    /// Starts `n` nodes; node 1 initialises the cluster with all of them.
    pub async fn start(n: u64, extra_args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let addrs: BTreeMap<u64, String> = (1..=n)
            .map(|id| (id, format!("127.0.0.1:{}", free_port())))
            .collect();
        let mut cluster = Cluster {
            dir,
            addrs,
            children: BTreeMap::new(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        let init: Vec<String> = cluster
            .addrs
            .iter()
            .map(|(id, a)| format!("{id}={a}"))
            .collect();
        let init = init.join(",");
        for id in cluster.ids() {
            let mut extra = Vec::new();
            if id == 1 {
                extra = vec!["--init".to_owned(), init.clone()];
            }
            cluster.spawn(id, id, CLUSTER_ID, &extra);
        }
        cluster.wait_for_leader().await;
        cluster
    }

    pub fn ids(&self) -> Vec<u64> {
        self.addrs.keys().copied().collect()
    }

    pub fn addr(&self, id: u64) -> String {
        self.addrs[&id].clone()
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}"))
    }

    fn serve_args(
        &self,
        dir_of: u64,
        node_id: u64,
        cluster_id: &str,
        extra: &[String],
    ) -> Vec<String> {
        let mut args: Vec<String> = [
            "meta",
            "serve",
            "--id",
            &node_id.to_string(),
            "--listen",
            &self.addrs[&dir_of],
            "--data-dir",
            &self.data_dir(dir_of).display().to_string(),
            "--cluster-id",
            cluster_id,
            "--heartbeat-ms",
            "100",
            "--election-timeout-ms",
            "600",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.extra_args.iter().cloned());
        args.extend(extra.iter().cloned());
        args
    }

    fn spawn(&mut self, dir_of: u64, node_id: u64, cluster_id: &str, extra: &[String]) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node-{dir_of}.log")))
            .expect("log file");
        let child = Command::new(BIN)
            .args(self.serve_args(dir_of, node_id, cluster_id, extra))
            .env("BUCKETFS_LOG", "info,openraft=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn bucketfs meta serve");
        self.children.insert(dir_of, child);
    }

    pub fn client(&self) -> MetaClient {
        let addrs: Vec<String> = self.addrs.values().cloned().collect();
        futures_lite_block(MetaClient::connect(addrs, options())).expect("client")
    }

    /// SIGKILL: no chance to flush anything that was not already durable.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.children.remove(&id) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self, id: u64) {
        self.spawn(id, id, CLUSTER_ID, &[]);
        self.wait_answers(id).await;
    }

    /// Waits until node `id` answers status, whatever its role.
    async fn wait_answers(&self, id: u64) {
        let client = client_for(&self.addr(id)).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while client.status_of(&self.addr(id)).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {id} does not answer; {}",
                self.log(id)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The id of a live node that reports itself leader.
    pub async fn wait_for_leader(&self) -> u64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            for (id, addr) in &self.addrs {
                if !self.children.contains_key(id) {
                    continue;
                }
                let c = client_for(addr).await;
                if let Ok(s) = c.status_of(addr).await
                    && s.role == Role::Leader
                {
                    return *id;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader elected; node 1 log:\n{}",
                self.log(1)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until node `id` has applied everything the leader had applied when called.
    pub async fn wait_caught_up(&self, id: u64) {
        let leader = self.wait_for_leader().await;
        let c = client_for(&self.addr(leader)).await;
        let target = c
            .status_of(&self.addr(leader))
            .await
            .expect("leader status")
            .applied_index
            .unwrap_or(0);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(s) = c.status_of(&self.addr(id)).await
                && s.applied_index.unwrap_or(0) >= target
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {id} did not catch up to {target}; its log:\n{}",
                self.log(id)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self, id: u64) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("node-{id}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs `meta serve` for node `id`'s data dir with overrides and waits for it to exit
    /// (it is expected to refuse to start).
    pub fn run_serve_expect_exit(&self, id: u64, overrides: &[&str]) -> Output {
        let cluster_id = overrides
            .windows(2)
            .find(|w| w[0] == "--cluster-id")
            .map(|w| w[1])
            .unwrap_or(CLUSTER_ID);
        self.run_serve(id, id, cluster_id)
    }

    pub fn run_serve_expect_exit_with_id(
        &self,
        dir_of: u64,
        node_id: u64,
        _extra: &[&str],
    ) -> Output {
        self.run_serve(dir_of, node_id, CLUSTER_ID)
    }

    fn run_serve(&self, dir_of: u64, node_id: u64, cluster_id: &str) -> Output {
        let mut child = Command::new(BIN)
            .args(self.serve_args(dir_of, node_id, cluster_id, &[]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // A node that wrongly accepts the data dir would run forever: bound the wait.
        for _ in 0..300 {
            if let Ok(Some(_)) = child.try_wait() {
                return child.wait_with_output().expect("output");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("output");
        panic!(
            "meta serve accepted a data dir it should refuse; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Overwrites RocksDB's CURRENT file, as a disk error or a bad copy would.
    pub fn corrupt_data_dir(&self, id: u64) {
        let current = self.data_dir(id).join("CURRENT");
        assert!(
            current.exists(),
            "expected a RocksDB dir at {}",
            self.data_dir(id).display()
        );
        std::fs::write(&current, b"\x00garbage-not-a-manifest").expect("corrupt CURRENT");
    }

    /// Starts one more node, not yet a member; returns its id.
    pub async fn spawn_extra_node(&mut self) -> u64 {
        let id = self.addrs.keys().max().copied().unwrap_or(0) + 1;
        self.addrs.insert(id, format!("127.0.0.1:{}", free_port()));
        self.spawn(id, id, CLUSTER_ID, &[]);
        self.wait_answers(id).await;
        id
    }

    /// Runs the CLI to completion.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN).args(args).output().expect("run bucketfs")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `MetaClient::connect` only builds lazy channels; it never waits on the network, so it is
/// fine to drive it to completion from synchronous code inside a test's runtime.
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
