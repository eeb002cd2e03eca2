//! A kinto-rs shard node.
//!
//! `server` speaks gRPC (the contract in `proto/`), `domain` applies Kinto's
//! rules to the buckets this node owns, and `storage` keeps the objects
//! behind the [`storage::Storage`] trait.

pub mod admin;
pub mod admin_cli;
pub mod admission;
pub mod config;
pub mod domain;
pub mod drain;
pub mod lease;
pub mod metrics;
pub mod moves;
pub mod placement;
pub mod server;
pub mod storage;
pub mod tls;
