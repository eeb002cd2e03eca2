//! Which shard serves a bucket, and the gRPC clients to reach them.
//!
//! The map is static for now: shard `i` of the configured list owns the
//! slot range given by `kinto_proto::placement`. Generation 1 is sent with
//! every call so a shard can refuse a stale router (docs/placement.md).

use kinto_proto::pb::shard_client::ShardClient;
use kinto_proto::pb::{
    AccountHashRequest, Caller, FlushRequest, HealthRequest, OpResult, Operation,
    PermissionsRequest, PrincipalsRequest, UserDataRequest,
};
use kinto_proto::placement::shard_for_bucket;
use kinto_proto::KintoError;
use serde_json::Value;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

#[derive(Clone)]
pub struct ShardMap {
    clients: Vec<ShardClient<Channel>>,
    generation: u64,
}

impl ShardMap {
    /// Lazily-connecting clients for `urls`, in shard-index order.
    pub fn connect(urls: &[String]) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("no shard_urls configured".into());
        }
        let clients = urls
            .iter()
            .map(|u| {
                let ep = Endpoint::from_shared(u.clone())
                    .map_err(|e| format!("bad shard url {u}: {e}"))?
                    .connect_timeout(Duration::from_secs(2))
                    .timeout(Duration::from_secs(30))
                    .tcp_nodelay(true);
                Ok(ShardClient::new(ep.connect_lazy())
                    .max_decoding_message_size(64 * 1024 * 1024)
                    .max_encoding_message_size(64 * 1024 * 1024))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ShardMap {
            clients,
            generation: 1,
        })
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn shard_of(&self, bucket: &str) -> usize {
        shard_for_bucket(bucket, self.clients.len() as u32) as usize
    }

    /// Runs an operation on shard `index`.
    pub async fn execute(&self, index: usize, mut op: Operation) -> Result<OpResult, KintoError> {
        op.generation = self.generation;
        let mut client = self.clients[index].clone();
        client
            .execute(op)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| KintoError::from_status(&s))
    }

    /// Runs an operation on every shard at once (cross-bucket endpoints).
    pub async fn execute_all(&self, op: Operation) -> Vec<Result<OpResult, KintoError>> {
        let calls = (0..self.clients.len()).map(|i| self.execute(i, op.clone()));
        futures::future::join_all(calls).await
    }

    /// `(shard index, storage healthy)` for every shard; unreachable = false.
    pub async fn health(&self, timeout: Duration) -> Vec<bool> {
        let calls = self.clients.iter().map(|c| {
            let mut c = c.clone();
            async move {
                matches!(
                    tokio::time::timeout(timeout, c.health(HealthRequest {})).await,
                    Ok(Ok(r)) if r.get_ref().storage
                )
            }
        });
        futures::future::join_all(calls).await
    }

    /// The stored bcrypt hash of account `id` (empty when there is none).
    pub async fn account_hash(&self, id: &str) -> Result<String, KintoError> {
        let key = format!("account/{id}");
        let mut client = self.clients[self.shard_of(&key)].clone();
        client
            .account_hash(AccountHashRequest { id: id.to_owned() })
            .await
            .map(|r| r.into_inner().password_hash)
            .map_err(|s| KintoError::from_status(&s))
    }

    /// Every shard's `/permissions` entries for `caller`, concatenated.
    pub async fn permissions(&self, caller: &Caller) -> Result<Vec<Value>, KintoError> {
        let calls = self.clients.iter().map(|c| {
            let mut c = c.clone();
            let caller = Some(caller.clone());
            async move { c.permissions(PermissionsRequest { caller }).await }
        });
        let mut out = Vec::new();
        for r in futures::future::join_all(calls).await {
            let bytes = r
                .map_err(|s| KintoError::from_status(&s))?
                .into_inner()
                .entries_json;
            if let Ok(Value::Array(entries)) = serde_json::from_slice(&bytes) {
                out.extend(entries);
            }
        }
        Ok(out)
    }

    /// `__user_data__` on every shard; the first failure is the answer.
    pub async fn delete_user_data(&self, principal: &str) -> Result<(), KintoError> {
        let calls = self.clients.iter().map(|c| {
            let mut c = c.clone();
            let principal = principal.to_owned();
            async move { c.delete_user_data(UserDataRequest { principal }).await }
        });
        for r in futures::future::join_all(calls).await {
            r.map_err(|s| KintoError::from_status(&s))?;
        }
        Ok(())
    }

    /// Wipes every shard; the first failure is the answer.
    pub async fn flush_all(&self) -> Result<(), KintoError> {
        let calls = self.clients.iter().map(|c| {
            let mut c = c.clone();
            async move { c.flush(FlushRequest {}).await }
        });
        for r in futures::future::join_all(calls).await {
            r.map_err(|s| KintoError::from_status(&s))?;
        }
        Ok(())
    }

    /// Group URIs the principals belong to, across all shards.
    pub async fn groups_of(&self, principals: &[String]) -> Vec<String> {
        let calls = self.clients.iter().map(|c| {
            let mut c = c.clone();
            let principals = principals.to_vec();
            async move { c.principals(PrincipalsRequest { principals }).await }
        });
        let mut out = Vec::new();
        for r in futures::future::join_all(calls).await.into_iter().flatten() {
            out.extend(r.into_inner().groups);
        }
        out.sort();
        out.dedup();
        out
    }
}
