//! The invariants checked after (and during) every run, one file per property.

pub mod committed_durable;
pub mod election_safety;
pub mod exactly_once;
pub mod linearizable;
