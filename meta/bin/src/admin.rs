//! `bucketfs meta status` and `bucketfs meta members add|remove`.

use std::process::ExitCode;

use anyhow::Context;
use bucketfs_meta_client::{ClientOptions, MembershipStatus, MetaClient, NodeStatus};
use clap::{Args, Subcommand};

use crate::cluster_arg::{check_addr, parse_addrs};

#[derive(Args)]
pub struct StatusArgs {
    /// Addresses of the nodes to ask, HOST:PORT[,HOST:PORT...]. Every node listed is asked,
    /// and every member they report is asked too.
    #[arg(long, env = "BUCKETFS_META")]
    cluster: String,
}

#[derive(Subcommand)]
pub enum MembersCommand {
    /// Add a node: it joins as a learner, catches up, then becomes a voter.
    Add {
        #[arg(long, env = "BUCKETFS_META")]
        cluster: String,
        /// The new node's id (never reuse the id of a removed node).
        #[arg(long)]
        id: u64,
        /// The new node's address, as it advertises it (`--advertise` of its `meta serve`).
        #[arg(long)]
        addr: String,
        /// Leave it a learner (a non-voting replica).
        #[arg(long)]
        learner_only: bool,
    },
    /// Remove a node from the cluster (voter or learner).
    Remove {
        #[arg(long, env = "BUCKETFS_META")]
        cluster: String,
        #[arg(long)]
        id: u64,
    },
}

pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let addrs = parse_addrs(&args.cluster)?;
    let client = MetaClient::connect(addrs.clone(), ClientOptions::default())
        .await
        .context("connecting to the cluster")?;
    let mut results = client.status_all().await;
    // Also ask members that were not on the command line, so one address is enough.
    let known: Vec<String> = results.iter().map(|(a, _)| a.clone()).collect();
    let mut extra = Vec::new();
    for (_, r) in &results {
        if let Ok(s) = r {
            for m in s.membership.voters.iter().chain(&s.membership.learners) {
                if !known.contains(&m.addr) && !extra.contains(&m.addr) {
                    extra.push(m.addr.clone());
                }
            }
        }
    }
    for addr in extra {
        let r = client.status_of(&addr).await;
        results.push((addr, r));
    }

    println!(
        "{:<6} {:<22} {:<10} {:>6} {:>10} {:>10} {:>10}  leader",
        "id", "address", "role", "term", "last log", "applied", "snapshot"
    );
    let mut unreachable = 0;
    let mut membership: Option<MembershipStatus> = None;
    for (addr, r) in &results {
        match r {
            Ok(s) => {
                print_node(s);
                let newer = membership
                    .as_ref()
                    .is_none_or(|m| m.log_index < s.membership.log_index);
                if newer {
                    membership = Some(s.membership.clone());
                }
            }
            Err(e) => {
                unreachable += 1;
                println!("{:<6} {:<22} unreachable: {e}", "?", addr);
            }
        }
    }
    match membership {
        Some(m) => print_membership(&m),
        None => println!("membership: unknown (no node answered)"),
    }
    Ok(if unreachable == results.len() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn print_node(s: &NodeStatus) {
    let leader = match (s.leader_id, &s.leader_addr) {
        (Some(id), Some(addr)) => format!("{id} ({addr})"),
        (Some(id), None) => id.to_string(),
        _ => "unknown".to_owned(),
    };
    println!(
        "{:<6} {:<22} {:<10} {:>6} {:>10} {:>10} {:>10}  {}",
        s.node_id,
        s.addr,
        s.role.to_string(),
        s.current_term,
        opt(s.last_log_index),
        opt(s.applied_index),
        opt(s.snapshot_index),
        leader
    );
}

fn print_membership(m: &MembershipStatus) {
    let list = |ms: &[bucketfs_meta_client::Member]| {
        if ms.is_empty() {
            "none".to_owned()
        } else {
            ms.iter()
                .map(|m| format!("{}={}", m.id, m.addr))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    println!(
        "membership (log index {}, {}{}):",
        opt(m.log_index),
        if m.committed {
            "committed"
        } else {
            "not yet committed"
        },
        if m.joint {
            ", joint change in progress"
        } else {
            ""
        }
    );
    println!("  voters:   {}", list(&m.voters));
    println!("  learners: {}", list(&m.learners));
}

pub async fn members(cmd: MembersCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MembersCommand::Add {
            cluster,
            id,
            addr,
            learner_only,
        } => {
            check_addr(&addr).context("--addr")?;
            let client = MetaClient::connect(parse_addrs(&cluster)?, ClientOptions::default())
                .await
                .context("connecting to the cluster")?;
            let change = client
                .add_learner(id, addr.clone(), true)
                .await
                .with_context(|| format!("adding node {id} ({addr}) as a learner"))?;
            println!(
                "node {id} ({addr}) is a learner (log index {})",
                change.log_index
            );
            if learner_only {
                return Ok(ExitCode::SUCCESS);
            }
            let mut voters = change.membership.voter_ids();
            if !voters.contains(&id) {
                voters.push(id);
            }
            voters.sort_unstable();
            let change = client
                .change_membership(voters, false)
                .await
                .with_context(|| format!("promoting node {id} to voter"))?;
            println!("node {id} is a voter (log index {})", change.log_index);
            print_membership(&change.membership);
            Ok(ExitCode::SUCCESS)
        }
        MembersCommand::Remove { cluster, id } => {
            let client = MetaClient::connect(parse_addrs(&cluster)?, ClientOptions::default())
                .await
                .context("connecting to the cluster")?;
            let change = client
                .remove_node(id)
                .await
                .with_context(|| format!("removing node {id}"))?;
            println!("node {id} removed (log index {})", change.log_index);
            print_membership(&change.membership);
            Ok(ExitCode::SUCCESS)
        }
    }
}
