//! The contract between the gateway and the shards: the gRPC messages, the
//! catalogue of Kinto errors (one mapping to errno, HTTP status and gRPC
//! code), the bounds both sides enforce, and the query model both evaluate
//! (the shard to filter, the gateway to merge fan-out results). Nothing here
//! runs a process: settings and telemetry are `kinto-runtime`'s.

pub mod error;
pub mod limits;
pub mod python;
pub mod query;

/// Generated tonic/prost code for `proto/shard.proto`.
pub mod pb {
    tonic::include_proto!("kinto.shard.v1");
}

pub use error::{ErrorKind, KintoError};
