//! The `ShardAdmin` gRPC service (docs/placement.md, section 7): what a
//! shard owns at which generation, for the operator and `kinto-shard admin`.

use kinto_placement::live::LiveMap;
use kinto_proto::pb::shard_admin_server::{ShardAdmin, ShardAdminServer};
use kinto_proto::pb::{SlotRange, StatusReply, StatusRequest};
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct AdminService {
    index: u32,
    map: Arc<LiveMap>,
}

/// The admin service of shard `index`, reporting from `map`.
pub fn build(index: u32, map: Arc<LiveMap>) -> ShardAdminServer<AdminService> {
    ShardAdminServer::new(AdminService { index, map })
}

#[tonic::async_trait]
impl ShardAdmin for AdminService {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusReply>, Status> {
        let placement = self.map.current();
        let owned: Vec<SlotRange> = placement
            .ranges_of(self.index)
            .into_iter()
            .map(|[first, end]| SlotRange { first, end })
            .collect();
        Ok(Response::new(StatusReply {
            shard_index: self.index,
            generation: placement.generation(),
            owned_count: owned.iter().map(|r| r.end - r.first).sum(),
            owned,
            frozen: Vec::new(),
        }))
    }
}
