//! The kinto-rs gateway: Kinto's HTTP API (`http`), authentication (`auth`)
//! and the routing of each bucket to the shard that owns it (`routing`).
//! It never touches storage: every operation is a gRPC call to a shard.

pub mod admission;
pub mod app;
pub mod auth;
pub mod config;
pub mod connections;
pub mod deadline;
pub mod digest;
pub mod entry;
pub mod http;
pub mod identity_config;
pub mod map_from_shards;
pub mod metrics;
pub mod reply;
pub mod retry;
pub mod routing;
pub mod run;
pub mod shard_tls;
