//! The fault schedule of a run, drawn from the seed before the run starts.
//!
//! Drawing the whole schedule up front (instead of deciding faults as the run goes) keeps the
//! faults independent of what the cluster does, so two runs of one seed inject the same faults
//! at the same virtual times even while they are being debugged, and the schedule can be
//! printed on its own.
//!
//! Faults: network partitions (clients are put on one side or the other too), isolation of
//! the leader, healing, node crashes (the node's unsynced writes are lost; half of them aimed
//! at the leader) and restarts, "weather" (message loss and delay for the whole network), and
//! wall-clock skew of one node. Which node "the leader" is gets resolved when the fault fires.
//! At the end of the active phase everything is healed and every node restarted, so the run
//! can check that the cluster recovers.

use std::fmt;
use std::time::Duration;

use bucketfs_runtime::Entropy;

use crate::net::{Addr, CLIENT_BASE, Conditions};

/// Which node a fault hits. The leader is resolved when the fault fires (it is whoever leads
/// then), which keeps the schedule independent of the run while still aiming at the node
/// whose loss matters most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    Leader,
    Node(u64),
}

impl fmt::Display for Victim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Victim::Leader => write!(f, "the leader"),
            Victim::Node(n) => write!(f, "n{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Hosts in different groups cannot talk.
    Partition(Vec<Vec<Addr>>),
    /// Cuts the leader (with these clients) off from every other host.
    IsolateLeader(Vec<Addr>),
    Heal,
    /// Crashes the victim, or some other running node if the victim is down or unknown.
    Crash(Victim),
    /// Restarts the node that has been down longest.
    Restart,
    /// Restarts every node that is down.
    RestartAll,
    Weather(Conditions),
    /// Moves one node's wall clock (positive: ahead) by this many milliseconds.
    Skew(u64, i64),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(groups) => {
                write!(f, "partition")?;
                for g in groups {
                    let names: Vec<String> = g.iter().map(|a| crate::net::addr_name(*a)).collect();
                    write!(f, " [{}]", names.join(" "))?;
                }
                Ok(())
            }
            Fault::IsolateLeader(clients) => {
                let names: Vec<String> =
                    clients.iter().map(|a| crate::net::addr_name(*a)).collect();
                write!(f, "isolate the leader with [{}]", names.join(" "))
            }
            Fault::Heal => write!(f, "heal"),
            Fault::Crash(v) => write!(f, "crash {v}"),
            Fault::Restart => write!(f, "restart the longest-down node"),
            Fault::RestartAll => write!(f, "restart every down node"),
            Fault::Weather(c) => write!(
                f,
                "weather loss={:.2} delay={:?}..{:?}",
                c.loss, c.delay_min, c.delay_max
            ),
            Fault::Skew(n, ms) => write!(f, "skew n{n} {ms:+}ms"),
        }
    }
}

/// How hard a run is shaken. Chosen per seed so that the sweep mixes calm and rough runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// No faults: the baseline every other profile must not be worse than in safety.
    Calm,
    /// Partitions and weather only.
    Network,
    /// Crashes and restarts only.
    Crashes,
    /// Everything.
    Chaos,
}

impl Profile {
    pub fn draw(entropy: &Entropy) -> Profile {
        match entropy.below(10) {
            0 => Profile::Calm,
            1..=3 => Profile::Network,
            4..=5 => Profile::Crashes,
            _ => Profile::Chaos,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub at: Duration,
    pub fault: Fault,
}

/// Draws the schedule: faults between `from` and `until`, then the all-clear at `until`.
pub fn plan(
    entropy: &Entropy,
    profile: Profile,
    nodes: u64,
    clients: usize,
    from: Duration,
    until: Duration,
) -> Vec<Step> {
    let mut steps = Vec::new();
    // Nodes down at this point of the schedule (which ones is decided when faults fire).
    let mut down = 0u64;
    let mut partitioned = false;
    let mut t = from;
    if profile != Profile::Calm {
        let network = matches!(profile, Profile::Network | Profile::Chaos);
        let crashes = matches!(profile, Profile::Crashes | Profile::Chaos);
        loop {
            t += Duration::from_millis(150 + entropy.below(900));
            if t >= until {
                break;
            }
            let fault = match entropy.below(12) {
                // Bring crashed nodes back soon, so that crashes keep overlapping other faults
                // without leaving the cluster dead for most of the run.
                _ if down > 0 && entropy.chance(0.5) => {
                    down -= 1;
                    Fault::Restart
                }
                0..=1 if network && !partitioned => {
                    partitioned = true;
                    Fault::Partition(draw_partition(entropy, nodes, clients))
                }
                2 if network && !partitioned => {
                    partitioned = true;
                    Fault::IsolateLeader(draw_clients(entropy, clients))
                }
                0..=3 if network && partitioned => {
                    partitioned = false;
                    Fault::Heal
                }
                // At most a bare majority down at once: enough to stall the cluster for a
                // while, never so many that the run is mostly a dead cluster.
                4..=7 if crashes && down < nodes / 2 + 1 => {
                    down += 1;
                    if entropy.chance(0.5) {
                        Fault::Crash(Victim::Leader)
                    } else {
                        Fault::Crash(Victim::Node(1 + entropy.below(nodes)))
                    }
                }
                8..=9 if network => Fault::Weather(draw_weather(entropy)),
                10 => {
                    let n = 1 + entropy.below(nodes);
                    Fault::Skew(n, entropy.below(2001) as i64 - 1000)
                }
                _ => continue,
            };
            steps.push(Step { at: t, fault });
        }
    }
    // The all-clear: the rest of the run checks recovery and the final state.
    for fault in [
        Fault::Heal,
        Fault::Weather(Conditions::CALM),
        Fault::RestartAll,
    ] {
        steps.push(Step { at: until, fault });
    }
    steps
}

fn draw_clients(entropy: &Entropy, clients: usize) -> Vec<Addr> {
    (0..clients)
        .filter(|_| entropy.chance(0.5))
        .map(|c| CLIENT_BASE + c as Addr)
        .collect()
}

fn draw_partition(entropy: &Entropy, nodes: u64, clients: usize) -> Vec<Vec<Addr>> {
    // Two sides, both non-empty; often a lone node (a leader cut off from the rest).
    let mut a: Vec<Addr> = Vec::new();
    let mut b: Vec<Addr> = Vec::new();
    if entropy.chance(0.4) {
        let lone = 1 + entropy.below(nodes);
        a.push(lone);
        b.extend((1..=nodes).filter(|n| *n != lone));
    } else {
        for n in 1..=nodes {
            if entropy.chance(0.5) {
                a.push(n)
            } else {
                b.push(n)
            }
        }
        if a.is_empty() {
            a.push(b.remove(0));
        } else if b.is_empty() {
            b.push(a.remove(0));
        }
    }
    for c in 0..clients {
        if entropy.chance(0.5) {
            a.push(CLIENT_BASE + c as Addr);
        } else {
            b.push(CLIENT_BASE + c as Addr);
        }
    }
    vec![a, b]
}

fn draw_weather(entropy: &Entropy) -> Conditions {
    let loss = [0.0, 0.02, 0.1, 0.3][entropy.below(4) as usize];
    let delay_max = [3, 10, 30, 100][entropy.below(4) as usize];
    Conditions {
        loss,
        delay_min: Duration::from_micros(200),
        delay_max: Duration::from_millis(delay_max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_replayable_and_ends_healed() {
        for seed in 0..50 {
            let draw = || {
                let e = Entropy::seeded(seed);
                let p = Profile::draw(&e);
                (
                    p,
                    plan(&e, p, 5, 3, Duration::from_secs(1), Duration::from_secs(8)),
                )
            };
            let (profile, steps) = draw();
            assert_eq!(steps, draw().1, "seed {seed}");
            let mut down = 0;
            for s in &steps {
                match s.fault {
                    Fault::Crash(_) => {
                        down += 1;
                        assert!(down <= 3, "more than a bare majority down");
                    }
                    Fault::Restart => {
                        assert!(down > 0, "restart with nothing down");
                        down -= 1;
                    }
                    Fault::Partition(_) | Fault::IsolateLeader(_) | Fault::Weather(_)
                        if s.at < Duration::from_secs(8) =>
                    {
                        assert_ne!(profile, Profile::Calm);
                        assert_ne!(profile, Profile::Crashes);
                    }
                    _ => {}
                }
                assert!(s.at <= Duration::from_secs(8));
            }
            let tail: Vec<&Fault> = steps.iter().rev().take(3).map(|s| &s.fault).collect();
            assert!(tail.contains(&&Fault::Heal));
            assert!(tail.contains(&&Fault::RestartAll));
        }
    }

    #[test]
    fn partitions_have_two_nonempty_node_sides() {
        let e = Entropy::seeded(3);
        for _ in 0..100 {
            let groups = draw_partition(&e, 3, 2);
            assert_eq!(groups.len(), 2);
            for g in &groups {
                assert!(g.iter().any(|a| *a < CLIENT_BASE));
            }
            let all: usize = groups.iter().map(Vec::len).sum();
            assert_eq!(all, 5);
        }
    }
}
