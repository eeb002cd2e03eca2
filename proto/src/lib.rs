//! What the gateway and the shards share: the gRPC contract, the catalogue of
//! Kinto errors (one mapping to errno, HTTP status and gRPC code), the query
//! model both sides evaluate (the shard to filter, the gateway to merge
//! fan-out results), and the placement rule that maps a bucket to a shard.

pub mod error;
pub mod limits;
pub mod placement;
pub mod python;
pub mod query;
pub mod settings;
pub mod telemetry;

/// Generated tonic/prost code for `proto/shard.proto`.
pub mod pb {
    tonic::include_proto!("kinto.shard.v1");
}

pub use error::{ErrorKind, KintoError};
