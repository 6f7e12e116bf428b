//! Deterministic simulation of the bucketfs metadata cluster. See `README.md` for the design,
//! the fault model, the checkers and every source of nondeterminism that was closed.

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
