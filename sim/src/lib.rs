//! Deterministic simulation of the bucketfs metadata cluster. See `README.md` for the design,
//! the fault model, the checkers and every source of nondeterminism that was closed.
//!
//! [`run::run_seed`] is the entry point: one seed, one run. It wires the real `MetaNode`s
//! ([`cluster`]) to the simulated network ([`net`], [`raft_net`]), drives clients
//! ([`workload`]) under a fault schedule ([`nemesis`]), records the [`history`] and what the
//! [`observer`] sees, and hands both to the [`checkers`] (with [`model`] as the sequential
//! specification). Every event goes into the [`trace`], whose digest proves replayability.

pub mod checkers;
pub mod cluster;
pub mod history;
pub mod model;
pub mod nemesis;
pub mod net;
pub mod observer;
pub mod raft_net;
pub mod run;
pub mod trace;
pub mod workload;
