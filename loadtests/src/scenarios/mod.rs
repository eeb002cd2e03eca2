//! The load scenarios; each file holds one, with its transactions in order.

pub mod ceiling;
pub mod flood;
pub mod polling;
pub mod scale;
pub mod storage_sync;
