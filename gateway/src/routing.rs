//! Which shard serves a bucket, and the gRPC clients to reach them.
//!
//! Buckets are routed by the live shard map (`kinto_placement::live`): the
//! map shared with the shards in the all-in-one binary, the one stored in
//! `placement_dir` for `kinto-gateway`, or without one the map the shards
//! report (`map_from_shards`: a CQL deployment's). Every call carries the map's generation, so a shard can
//! refuse a stale router, which then refreshes and retries (`retry`,
//! docs/placement.md).

use crate::reply;
use kinto_placement::live::{LiveMap, Placement};
use kinto_placement::PlacementKey;
use kinto_proto::pb::shard_client::ShardClient;
use kinto_proto::pb::shard_server::Shard as ShardRpc;
use kinto_proto::pb::{
    AccountHashReply, AccountHashRequest, Caller, FlushReply, FlushRequest, HealthReply,
    HealthRequest, ListQuery, OpResult, Operation, OperationList, OutcomeList, PermissionsReply,
    PermissionsRequest, PrincipalsReply, PrincipalsRequest, UserDataReply, UserDataRequest,
};
use kinto_proto::KintoError;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tonic::body::Body;
use tonic::transport::Endpoint;
use tower::util::BoxCloneSyncService;

/// A gRPC channel to a shard.
pub type Transport = BoxCloneSyncService<
    tonic::codegen::http::Request<Body>,
    tonic::codegen::http::Response<Body>,
    tonic::transport::Error,
>;

/// How the gateway reaches one shard.
#[derive(Clone)]
enum Link {
    /// A gRPC client over the network.
    Grpc(Arc<Remote>),
    /// The all-in-one binary: the shard's gRPC service in this process,
    /// called with the same request and reply messages (trace context in
    /// the same metadata) but without encoding them; the codec and body
    /// plumbing were 9% of a `/batch`'s instructions.
    Local(Arc<dyn ShardRpc>),
}

/// A shard over the network: its channel, replaced by a new one when the
/// shard says it is stopping. The stopping shard has closed its listener, so
/// the new channel's calls fail to connect (never run, retried) until it is
/// back, instead of racing the old connection's close, whose failures the
/// gateway could not tell from a call that ran.
struct Remote {
    endpoint: Endpoint,
    /// The channel and how many times it was replaced.
    client: std::sync::RwLock<(ShardClient<Transport>, u64)>,
}

impl Remote {
    fn new(endpoint: Endpoint) -> Self {
        let channel = client(BoxCloneSyncService::new(endpoint.connect_lazy()));
        Remote {
            endpoint,
            client: std::sync::RwLock::new((channel, 0)),
        }
    }

    fn client(&self) -> (ShardClient<Transport>, u64) {
        self.client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A new channel, unless another call already replaced channel `seen`.
    fn renew(&self, seen: u64) {
        let mut current = self
            .client
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.1 == seen {
            let channel = client(BoxCloneSyncService::new(self.endpoint.connect_lazy()));
            *current = (channel, seen + 1);
        }
    }
}

/// Whether a failed call's status is a shard's own `NotRun` refusal: it is
/// stopping (a transport failure has no details).
fn stopping(status: &tonic::Status) -> bool {
    !status.details().is_empty()
        && serde_json::from_slice::<KintoError>(status.details())
            .is_ok_and(|e| e.kind == kinto_proto::ErrorKind::NotRun)
}

/// Each gRPC method of [`Link`], on either kind of link.
macro_rules! link_methods {
    ($($method:ident($request:ty) -> $reply:ty;)*) => {
        impl Link {
            $(
                async fn $method(
                    &mut self,
                    request: tonic::Request<$request>,
                ) -> Result<tonic::Response<$reply>, tonic::Status> {
                    let request = crate::deadline::bound(request);
                    let reply = match self {
                        Link::Grpc(remote) => {
                            let (mut client, seen) = remote.client();
                            let reply = client.$method(request).await;
                            if matches!(&reply, Err(s) if stopping(s)) {
                                remote.renew(seen);
                            }
                            reply
                        }
                        Link::Local(service) => service.$method(request).await,
                    };
                    crate::admission::hint::from_shard(match &reply {
                        Ok(r) => r.metadata(),
                        Err(s) => s.metadata(),
                    });
                    reply
                }
            )*
        }
    };
}

link_methods! {
    execute(Operation) -> OpResult;
    execute_many(OperationList) -> OutcomeList;
    health(HealthRequest) -> HealthReply;
    principals(PrincipalsRequest) -> PrincipalsReply;
    account_hash(AccountHashRequest) -> AccountHashReply;
    permissions(PermissionsRequest) -> PermissionsReply;
    delete_user_data(UserDataRequest) -> UserDataReply;
    flush(FlushRequest) -> FlushReply;
}

/// One call to a shard, as a `Send + 'static` future.
pub type Call<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// Makes the link to a shard the map adds, from its address.
type Grow = Arc<dyn Fn(&str) -> Result<Link, String> + Send + Sync>;

#[derive(Clone)]
pub struct ShardMap {
    /// By shard id: those of `shard_urls`, then those the map added later
    /// (reached at their address in the map).
    clients: Arc<std::sync::RwLock<Arc<[Link]>>>,
    /// Which shard owns which slot; sent with every call (its generation)
    /// so a shard can refuse a stale router.
    map: Arc<LiveMap>,
    /// Makes links to shards the map adds (`None`: in process, no network).
    grow: Option<Grow>,
}

/// The shard that owns the object `op` targets, if one does (not for the
/// lists that span every shard). A POST of an account is placed by the id
/// in its body, as the handler placed it.
fn owner_of(op: &Operation, placement: &Placement) -> Option<usize> {
    let target = op.target.as_ref()?;
    let account = target.kind == kinto_proto::pb::Kind::Account as i32;
    let posted = (account && target.object_id.is_empty())
        .then(|| crate::http::accounts::posted_id(op).ok())
        .flatten();
    let id = posted
        .as_deref()
        .or(Some(target.object_id.as_str()).filter(|id| !id.is_empty()));
    PlacementKey::of(account, &target.bucket_id, id).map(|key| placement.owner(key) as usize)
}

fn client(transport: Transport) -> ShardClient<Transport> {
    ShardClient::new(transport)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024)
}

impl ShardMap {
    /// Shards served in this process, in shard-index order, placed by `map`.
    pub fn in_process<S: ShardRpc>(services: Vec<S>, map: Arc<LiveMap>) -> Result<Self, String> {
        if services.is_empty() {
            return Err("no shards".into());
        }
        let clients: Vec<Link> = services
            .into_iter()
            .map(|s| Link::Local(Arc::new(s)))
            .collect();
        Ok(ShardMap::with(clients, map, None))
    }

    fn with(clients: Vec<Link>, map: Arc<LiveMap>, grow: Option<Grow>) -> Self {
        let start = map.current().generation();
        let clients: Arc<std::sync::RwLock<Arc<[Link]>>> =
            Arc::new(std::sync::RwLock::new(clients.into()));
        let links = Arc::downgrade(&clients);
        let on_change = grow.clone();
        map.on_change(move |p| {
            if p.generation() != start {
                if let Some(c) = crate::metrics::MAP_REFRESHES.as_ref() {
                    c.inc();
                }
            }
            if let (Some(grow), Some(links)) = (&on_change, links.upgrade()) {
                add_links(&links, p, grow);
            }
        });
        ShardMap { clients, map, grow }
    }

    /// The link to shard `index`. The map in force may name a shard a
    /// moment before the watcher has made its link: it is made here then.
    fn link(&self, index: usize) -> Option<Link> {
        if let Some(link) = self.links().get(index) {
            return Some(link.clone());
        }
        add_links(&self.clients, &self.map.current(), self.grow.as_ref()?);
        self.links().get(index).cloned()
    }

    /// The links by shard id, as of now.
    fn links(&self) -> Arc<[Link]> {
        Arc::clone(
            &self
                .clients
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Shard ids a request spanning every shard asks: those owning slots.
    fn holders(&self) -> Vec<usize> {
        let placement = self.map.current();
        (0..self.links().len())
            .filter(|&i| placement.holds_slots(i as u32))
            .collect()
    }

    /// Lazily-connecting plaintext clients for `urls`, in shard-index order,
    /// placed by the static map.
    pub fn connect(urls: &[String]) -> Result<Self, String> {
        let map = LiveMap::fixed(Placement::fixed(urls.len() as u32));
        Self::connect_with(urls, None, map)
    }

    /// Lazily-connecting clients for `urls`, in shard-index order, over TLS
    /// when `tls` is given (`https://` URLs: `crate::shard_tls`), placed by
    /// `map`.
    pub fn connect_with(
        urls: &[String],
        tls: Option<&tonic::transport::ClientTlsConfig>,
        map: Arc<LiveMap>,
    ) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("no shard_urls configured".into());
        }
        let tls = tls.cloned();
        // Links the map adds are made on the map's watcher thread: a channel
        // spawns its worker on this runtime.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let grow: Grow = Arc::new(move |u: &str| {
            let _entered = runtime.as_ref().map(|r| r.enter());
            grpc_link(u, tls.as_ref())
        });
        let clients = urls
            .iter()
            .map(|u| grow(u))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ShardMap::with(clients, map, Some(grow)))
    }

    pub fn len(&self) -> usize {
        self.links().len()
    }

    pub fn is_empty(&self) -> bool {
        self.links().is_empty()
    }

    /// The shard of a bucket (or of the key a route carries in place of a
    /// bucket: see `http::routes`).
    pub fn shard_of(&self, bucket: &str) -> usize {
        self.shard_of_key(PlacementKey::Bucket(bucket))
    }

    pub fn shard_of_key(&self, key: PlacementKey<'_>) -> usize {
        self.map.current().owner(key) as usize
    }

    /// The generation of the map in force.
    pub fn generation(&self) -> u64 {
        self.map.current().generation()
    }

    /// Runs an operation on shard `index`, or on the bucket's new owner
    /// when that shard refuses it as not its own (`retry`). (Every call is
    /// a boxed `'static` future: the compiler then sees at once that it is
    /// `Send`, which it cannot prove through the generic client in
    /// handlers' futures.)
    pub fn execute(&self, index: usize, op: Operation) -> Call<Result<OpResult, KintoError>> {
        let (this, map) = (self.clone(), Arc::clone(&self.map));
        Box::pin(async move {
            crate::retry::routed(
                &map,
                index,
                |p| owner_of(&op, p),
                |index, generation| {
                    // A copy per try: a refused operation is sent again.
                    let mut op = op.clone();
                    op.generation = generation;
                    call_execute(this.link(index), index, op)
                },
            )
            .await
        })
    }

    /// Runs operations on shard `index` in one call, in order (the part of a
    /// `/batch` that falls on that shard): one result per operation, each as
    /// [`ShardMap::execute`] would have answered it. If the call itself
    /// fails (shard down), or its reply cannot be paired with the
    /// operations, every operation has that failure. Operations the shard
    /// refused as not its own are then run again, in order, each on its
    /// owner.
    pub fn execute_many(
        &self,
        index: usize,
        ops: Vec<Operation>,
    ) -> Call<Vec<Result<OpResult, KintoError>>> {
        let generation = self.generation();
        let this = self.clone();
        let count = ops.len();
        let mut client = self.link(index);
        let mut sent = ops.clone();
        for op in &mut sent {
            op.generation = generation;
        }
        let request = kinto_runtime::telemetry::inject(OperationList { operations: sent });
        Box::pin(async move {
            let Some(client) = client.as_mut() else {
                return vec![Err(no_such_shard(index)); count];
            };
            let mut results = match client.execute_many(request).await {
                Ok(r) => reply::outcomes(index, count, r.into_inner().outcomes),
                Err(s) => vec![Err(reply::from_status(index, "execute_many", &s)); count],
            };
            for (result, op) in results.iter_mut().zip(ops) {
                if crate::retry::retryable(result) {
                    let owner = owner_of(&op, &this.map.current()).unwrap_or(index);
                    *result = this.execute(owner, op).await;
                }
            }
            results
        })
    }

    /// Runs an operation on every shard at once (cross-bucket endpoints). A
    /// `read` runs again until the shards' parts cover every slot once
    /// ([`crate::retry::spanning`]); a write runs once.
    pub async fn execute_all(
        &self,
        op: Operation,
        read: bool,
    ) -> Result<Vec<Result<OpResult, KintoError>>, KintoError> {
        // The shards holding slots, asked again on each round: the map may
        // have changed.
        let round = || {
            let calls = self
                .holders()
                .into_iter()
                .map(|i| self.execute(i, op.clone()));
            futures::future::join_all(calls)
        };
        if !read {
            return Ok(round().await);
        }
        crate::retry::spanning(&self.map, round, |r: &OpResult| &r.served_slots).await
    }

    /// `(shard index, storage healthy)` for every shard; unreachable = false.
    pub async fn health(&self, timeout: Duration) -> Vec<bool> {
        let links = self.links();
        let calls = self.holders().into_iter().map(|i| {
            let mut c = links[i].clone();
            let call: Call<bool> = Box::pin(async move {
                matches!(
                    tokio::time::timeout(timeout, c.health(tonic::Request::new(HealthRequest {}))).await,
                    Ok(Ok(r)) if r.get_ref().storage
                )
            });
            call
        });
        futures::future::join_all(calls).await
    }

    /// The stored bcrypt hash of account `id` (empty when there is none).
    /// A call that did not run (the shard restarting) is retried only when
    /// `known` (a name lately seen to be an account); for another name it is
    /// `Unavailable` at once, so that its credentials go to the next policy
    /// without waiting for the request's deadline (`auth::account`).
    pub fn account_hash(&self, id: &str, known: bool) -> Call<Result<String, KintoError>> {
        let index = self.shard_of_key(PlacementKey::Account(id));
        let (this, id) = (self.clone(), id.to_owned());
        Box::pin(async move {
            // Retried like an operation: a moving account is refused, not missing.
            crate::retry::routed(
                &this.map,
                index,
                |p| Some(p.owner(PlacementKey::Account(&id)) as usize),
                |index, _| {
                    let (link, id) = (this.link(index), id.clone());
                    async move {
                        let Some(mut client) = link else {
                            return Err(no_such_shard(index));
                        };
                        client
                            .account_hash(tonic::Request::new(AccountHashRequest { id }))
                            .await
                            .map(|r| r.into_inner().password_hash)
                            .map_err(|s| {
                                let mut e = reply::from_status(index, "account_hash", &s);
                                if !known && e.kind == kinto_proto::ErrorKind::NotRun {
                                    e.kind = kinto_proto::ErrorKind::Unavailable;
                                }
                                e
                            })
                    }
                },
            )
            .await
        })
    }

    /// Calls every shard at once; the first failure is the answer.
    async fn on_every_shard<T>(
        &self,
        method: &'static str,
        call: impl Fn(Link) -> Call<Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<Vec<T>, KintoError> {
        self.each_shard(method, &call).await.into_iter().collect()
    }

    /// Each shard's answer to `call`, in shard order.
    async fn each_shard<T>(
        &self,
        method: &'static str,
        call: &impl Fn(Link) -> Call<Result<tonic::Response<T>, tonic::Status>>,
    ) -> Vec<Result<T, KintoError>> {
        let (links, holders) = (self.links(), self.holders());
        // A call that did not run (the shard restarting) is tried again.
        let calls = holders.iter().map(|&i| {
            let link = &links[i];
            crate::retry::unrouted(move || {
                let reply = call(link.clone());
                async move { reply.await.map_err(|s| reply::from_status(i, method, &s)) }
            })
        });
        futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|r| r.map(tonic::Response::into_inner))
            .collect()
    }

    /// Every shard's `/permissions` entries for `caller`, concatenated: all
    /// of them, or each shard's part of the page `query` asks for.
    pub async fn permissions(
        &self,
        caller: &Caller,
        query: Option<ListQuery>,
    ) -> Result<Vec<Value>, KintoError> {
        let call = |mut c: Link| -> Call<_> {
            let caller = Some(caller.clone());
            let query = query.clone();
            Box::pin(async move {
                c.permissions(tonic::Request::new(PermissionsRequest { caller, query }))
                    .await
            })
        };
        // Read again until the shards' parts cover every slot once.
        let replies = crate::retry::spanning(
            &self.map,
            || self.each_shard("permissions", &call),
            |r: &PermissionsReply| &r.served_slots,
        )
        .await?;
        let mut out = Vec::new();
        for (i, r) in replies.into_iter().enumerate() {
            let r = r?;
            let entries: Vec<Value> = reply::decode(Some(i), "permissions", &r.entries_json)?;
            out.extend(entries);
        }
        Ok(out)
    }

    /// `__user_data__` on every shard.
    pub async fn delete_user_data(&self, principal: &str) -> Result<(), KintoError> {
        self.on_every_shard("delete_user_data", |mut c| {
            let principal = principal.to_owned();
            Box::pin(async move {
                c.delete_user_data(tonic::Request::new(UserDataRequest { principal }))
                    .await
            })
        })
        .await
        .map(drop)
    }

    /// Wipes every shard.
    pub async fn flush_all(&self) -> Result<(), KintoError> {
        self.on_every_shard("flush", |mut c| {
            Box::pin(async move { c.flush(tonic::Request::new(FlushRequest {})).await })
        })
        .await
        .map(drop)
    }

    /// Group URIs the principals belong to, on each shard (in shard
    /// order); a shard that cannot answer is logged and counted.
    pub async fn groups_by_shard(
        &self,
        principals: &[String],
    ) -> Vec<Result<Vec<String>, KintoError>> {
        let links = self.links();
        let calls = self.holders().into_iter().map(|i| {
            let mut c = links[i].clone();
            let principals = principals.to_vec();
            let call: Call<_> = Box::pin(async move {
                c.principals(tonic::Request::new(PrincipalsRequest { principals }))
                    .await
                    .map(|r| r.into_inner().groups)
                    .map_err(|s| reply::from_status(i, "principals", &s))
            });
            call
        });
        futures::future::join_all(calls).await
    }

    /// Group URIs the principals belong to, across all shards. A shard that
    /// cannot answer fails the whole: fewer groups would silently be fewer
    /// rights.
    pub async fn groups_of(&self, principals: &[String]) -> Result<Vec<String>, KintoError> {
        let mut out = Vec::new();
        for groups in self.groups_by_shard(principals).await {
            out.extend(groups?);
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// A lazily-connecting gRPC link to the shard at `url`, over TLS when
/// `tls` is given (`https://` URLs: `crate::shard_tls`).
fn grpc_link(url: &str, tls: Option<&tonic::transport::ClientTlsConfig>) -> Result<Link, String> {
    let ep = Endpoint::from_shared(url.to_owned())
        .map_err(|e| format!("bad shard url {url}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true);
    let ep = match tls {
        Some(tls) => ep
            .tls_config(tls.clone())
            .map_err(|e| format!("shard url {url}: {}", kinto_runtime::tls::causes(&e)))?,
        None => ep,
    };
    Ok(Link::Grpc(Arc::new(Remote::new(ep))))
}

/// Links to the shards `p` names beyond those known, at their addresses
/// in the map (a rebalance adds shards: docs/placement.md, section 7).
fn add_links(links: &std::sync::RwLock<Arc<[Link]>>, p: &Placement, grow: &Grow) {
    let mut current = links
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let known = current.len();
    if p.shards() as usize <= known {
        return;
    }
    let mut all: Vec<Link> = current.to_vec();
    for id in known as u32..p.shards() {
        let Some(address) = p.address(id) else {
            // Ids are dense: a later shard cannot get this one's link.
            break;
        };
        match grow(address) {
            Ok(link) => all.push(link),
            Err(e) => {
                tracing::error!(shard = id, error = %e, "cannot reach a shard the map added");
                break;
            }
        }
    }
    *current = all.into();
}

/// One `Execute` call to shard `index` over `link`.
fn call_execute(
    link: Option<Link>,
    index: usize,
    op: Operation,
) -> Call<Result<OpResult, KintoError>> {
    let Some(mut client) = link else {
        return Box::pin(std::future::ready(Err(no_such_shard(index))));
    };
    // The caller's trace context rides in the gRPC metadata.
    let request = kinto_runtime::telemetry::inject(op);
    Box::pin(async move {
        client
            .execute(request)
            .await
            .map(|r| r.into_inner())
            .map_err(|s| reply::from_status(index, "execute", &s))
    })
}

/// The map names a shard this gateway has no address for: its map and its
/// `shard_urls` disagree until the operator fixes one of them.
fn no_such_shard(index: usize) -> KintoError {
    KintoError::unavailable(format!(
        "shard {index} of the map has no address in shard_urls"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_proto::pb::{Kind, Target};

    fn op(kind: Kind, bucket: &str, id: &str, body: Option<&str>) -> Operation {
        Operation {
            target: Some(Target {
                kind: kind as i32,
                bucket_id: bucket.into(),
                collection_id: String::new(),
                object_id: id.into(),
            }),
            body_json: body.map(|b| b.as_bytes().to_vec()),
            ..Default::default()
        }
    }

    #[test]
    fn a_retried_operation_is_placed_as_its_handler_placed_it() {
        let p = Placement::fixed(7);
        let owner = |key| Some(p.owner(key) as usize);
        let record = op(Kind::Record, "blog", "r1", None);
        assert_eq!(owner_of(&record, &p), owner(PlacementKey::Bucket("blog")));
        let account = op(Kind::Account, "", "alice", None);
        assert_eq!(
            owner_of(&account, &p),
            owner(PlacementKey::Account("alice"))
        );
        let posted = op(Kind::Account, "", "", Some(r#"{"id": "bob"}"#));
        assert_eq!(owner_of(&posted, &p), owner(PlacementKey::Account("bob")));
        // The lists that span every shard have no owner.
        assert_eq!(owner_of(&op(Kind::Account, "", "", None), &p), None);
        assert_eq!(owner_of(&op(Kind::Bucket, "", "", None), &p), None);
    }
}
