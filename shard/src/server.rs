//! The gRPC face of a shard: decodes, calls the domain, encodes.

use crate::domain::budget::{grpc_timeout, Budget};
use crate::domain::{Shard, ShardSettings};
use crate::storage::Storage;
use kinto_placement::live::LiveMap;
use kinto_proto::pb::shard_admin_server::ShardAdminServer;
use kinto_proto::pb::shard_server::{Shard as ShardRpc, ShardServer};
use kinto_proto::pb::{
    outcome, AccountHashReply, AccountHashRequest, FlushReply, FlushRequest, HealthReply,
    HealthRequest, OpResult, Operation, OperationList, Outcome, OutcomeList, PermissionsReply,
    PermissionsRequest, PlacementMapReply, PlacementMapRequest, PrincipalsReply, PrincipalsRequest,
    UserDataReply, UserDataRequest,
};
use kinto_proto::KintoError;
use kinto_runtime::settings::RawSettings;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub struct ShardService {
    shard: Arc<Shard>,
    metrics: OpMetrics,
    /// The longest an operation may run (`request_timeout_seconds`), also
    /// when its caller sent no deadline or a longer one.
    timeout: Duration,
    /// Bounded concurrency per shard and per bucket.
    gate: crate::admission::Gate,
    /// Keeps the store's slots in line with the map (embedded store).
    mover: Option<Arc<crate::moves::Mover>>,
    /// Counts the running calls; refuses new ones once the shard stops.
    drain: Arc<crate::drain::Drain>,
    /// Refuses calls while this shard's view of the map is too old.
    lease: crate::lease::Lease,
}

/// This shard's children of the operation metrics, resolved once rather than
/// by `with_label_values` on every operation; errors, rarer, still are.
struct OpMetrics {
    index: String,
    /// `method` label values by `pb::Method` number, derived from the proto.
    methods: Vec<String>,
    queue: Option<prometheus::IntGauge>,
    ok: Option<Vec<prometheus::Histogram>>,
}

impl OpMetrics {
    fn new(index: u32) -> Self {
        let index = index.to_string();
        let methods: Vec<String> = (0..)
            .map_while(|i| kinto_proto::pb::Method::try_from(i).ok())
            .map(|m| format!("{m:?}").to_lowercase())
            .collect();
        let queue = crate::metrics::IN_FLIGHT
            .as_ref()
            .map(|g| g.with_label_values(&[index.as_str()]));
        let ok = crate::metrics::OPERATIONS.as_ref().map(|h| {
            methods
                .iter()
                .map(|m| h.with_label_values(&[index.as_str(), m, "ok"]))
                .collect()
        });
        OpMetrics {
            index,
            methods,
            queue,
            ok,
        }
    }

    /// `method` is the operation's raw number; an unknown one counts as
    /// `unspecified` (number 0), as `Operation::method()` reads it.
    fn observe(&self, method: i32, result: &Result<OpResult, KintoError>, seconds: f64) {
        let method = usize::try_from(method)
            .ok()
            .filter(|m| *m < self.methods.len())
            .unwrap_or(0);
        match result {
            Ok(_) => {
                if let Some(ok) = &self.ok {
                    ok[method].observe(seconds);
                }
            }
            Err(e) => {
                if let Some(h) = crate::metrics::OPERATIONS.as_ref() {
                    let errno = e.kind.spec().errno.to_string();
                    let labels = [self.index.as_str(), &self.methods[method], &errno];
                    h.with_label_values(&labels).observe(seconds);
                }
            }
        }
    }
}

impl ShardService {
    /// The stop of this service's calls (`crate::drain`).
    pub fn drain(&self) -> Arc<crate::drain::Drain> {
        Arc::clone(&self.drain)
    }

    /// Admits a call, or refuses it before any effect: when stopping, or
    /// when this shard cannot renew its lease on the map.
    async fn admit(&self) -> Result<crate::drain::Pass, Status> {
        let pass = self.drain.enter().map_err(|e| e.to_status())?;
        self.lease.check().await.map_err(|e| e.to_status())?;
        Ok(pass)
    }

    /// Runs one operation with its span, queue gauge and latency metric.
    async fn run(
        &self,
        op: Operation,
        metadata: &tonic::metadata::MetadataMap,
        budget: &Budget,
    ) -> Result<OpResult, KintoError> {
        use tracing::Instrument;
        let span = tracing::info_span!("shard.execute", shard = self.shard.settings().index);
        kinto_runtime::telemetry::extract(metadata, &span);
        let method = op.method;
        let queue = &self.metrics.queue;
        if let Some(g) = queue {
            g.inc();
        }
        let started = std::time::Instant::now();
        let bucket = op.target.as_ref().map_or("", |t| t.bucket_id.as_str());
        let result = match self.gate.admit(bucket, budget.deadline()).await {
            Ok(_pass) => {
                self.shard
                    .execute(op, budget.clone())
                    .instrument(span)
                    .await
            }
            Err(shed) => Err(shed),
        };
        if let Some(g) = queue {
            g.dec();
        }
        self.metrics
            .observe(method, &result, started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            // A refusal of a bucket this shard does not own is routine while
            // the map changes: the gateway retries it.
            if e.kind == kinto_proto::ErrorKind::WrongShard {
                tracing::debug!(error = %e, "operation refused");
            } else if e.kind.spec().http_status >= 500 {
                tracing::error!(error = %e, "operation failed");
            }
        }
        result
    }

    /// Makes this call's commits durable before it answers (see
    /// [`Storage::persist`]), whatever the operations' outcomes, as a failed
    /// one may follow committed ones. Reads call it too: what they saw was
    /// committed before, so no answer reveals a commit a crash could lose.
    /// The call's budget: the caller's deadline, capped by ours.
    fn budget(&self, metadata: &tonic::metadata::MetadataMap) -> Budget {
        let timeout = grpc_timeout(metadata).map_or(self.timeout, |t| t.min(self.timeout));
        Budget::lasting(timeout)
    }

    /// Asks the gateway for a `Backoff` header while this shard is pressed.
    fn hint_pressure(&self, metadata: &mut tonic::metadata::MetadataMap) {
        if let Some(seconds) = self.gate.pressure() {
            metadata.insert(
                kinto_proto::limits::BACKOFF_METADATA,
                tonic::metadata::MetadataValue::from(seconds),
            );
        }
    }

    async fn persist(&self) -> Result<(), Status> {
        self.shard
            .storage()
            .persist()
            .await
            .map_err(|e| KintoError::from(e).to_status())
    }
}

#[tonic::async_trait]
impl ShardRpc for ShardService {
    async fn execute(&self, request: Request<Operation>) -> Result<Response<OpResult>, Status> {
        let _pass = self.admit().await?;
        let (metadata, _, op) = request.into_parts();
        let budget = self.budget(&metadata);
        let result = self.run(op, &metadata, &budget).await;
        self.persist().await?;
        let mut reply = match result {
            Ok(r) => Ok(Response::new(r)),
            Err(e) => Err(e.to_status()),
        };
        match &mut reply {
            Ok(r) => self.hint_pressure(r.metadata_mut()),
            Err(s) => self.hint_pressure(s.metadata_mut()),
        }
        reply
    }

    async fn execute_many(
        &self,
        request: Request<OperationList>,
    ) -> Result<Response<OutcomeList>, Status> {
        let _pass = self.admit().await?;
        let (metadata, _, list) = request.into_parts();
        let budget = self.budget(&metadata);
        let mut outcomes = Vec::with_capacity(list.operations.len());
        // In order: a later operation may depend on an earlier one's write.
        for op in list.operations {
            let result = match self.run(op, &metadata, &budget).await {
                Ok(r) => outcome::Result::Ok(r),
                Err(e) => outcome::Result::ErrorJson(e.to_json()),
            };
            outcomes.push(Outcome {
                result: Some(result),
            });
        }
        self.persist().await?;
        let mut reply = Response::new(OutcomeList { outcomes });
        self.hint_pressure(reply.metadata_mut());
        Ok(reply)
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthReply>, Status> {
        let ok = self.shard.storage().health().await.is_ok();
        let s = self.shard.settings();
        Ok(Response::new(HealthReply {
            storage: ok,
            shard_index: s.index,
            generation: s.map.current().generation(),
        }))
    }

    async fn principals(
        &self,
        request: Request<PrincipalsRequest>,
    ) -> Result<Response<PrincipalsReply>, Status> {
        let _pass = self.admit().await?;
        let groups = self
            .shard
            .groups_of(&request.into_inner().principals)
            .await
            .map_err(|e| e.to_status())?;
        self.persist().await?;
        Ok(Response::new(PrincipalsReply { groups }))
    }

    async fn account_hash(
        &self,
        request: Request<AccountHashRequest>,
    ) -> Result<Response<AccountHashReply>, Status> {
        let _pass = self.admit().await?;
        let id = request.into_inner().id;
        let hash = self
            .shard
            .account_hash(&id)
            .await
            .map_err(|e| e.to_status())?;
        self.persist().await?;
        Ok(Response::new(AccountHashReply {
            password_hash: hash.unwrap_or_default(),
        }))
    }

    async fn permissions(
        &self,
        request: Request<PermissionsRequest>,
    ) -> Result<Response<PermissionsReply>, Status> {
        let _pass = self.admit().await?;
        let request = request.into_inner();
        let caller = request.caller.unwrap_or_default();
        let (entries, served_slots) = self
            .shard
            .permissions(&caller, request.query)
            .await
            .map_err(|e| e.to_status())?;
        self.persist().await?;
        let entries_json =
            serde_json::to_vec(&entries).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(PermissionsReply {
            entries_json,
            served_slots,
        }))
    }

    async fn delete_user_data(
        &self,
        request: Request<UserDataRequest>,
    ) -> Result<Response<UserDataReply>, Status> {
        let _pass = self.admit().await?;
        let principal = request.into_inner().principal;
        let result = self.shard.delete_user_data(&principal).await;
        self.persist().await?;
        result.map_err(|e| e.to_status())?;
        Ok(Response::new(UserDataReply {}))
    }

    async fn flush(&self, _: Request<FlushRequest>) -> Result<Response<FlushReply>, Status> {
        let _pass = self.admit().await?;
        self.shard.flush().await.map_err(|e| e.to_status())?;
        Ok(Response::new(FlushReply {}))
    }

    /// Read from the store now, not from this shard's live map: a gateway
    /// that was refused asks for the newest map, which may be ahead of ours.
    async fn placement_map(
        &self,
        _: Request<PlacementMapRequest>,
    ) -> Result<Response<PlacementMapReply>, Status> {
        let map = self.shard.settings().map.as_ref();
        let stored = map
            .load_stored()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let Some(stored) = stored else {
            return Ok(Response::new(PlacementMapReply::default()));
        };
        Ok(Response::new(PlacementMapReply {
            generation: stored.generation,
            map: stored.to_json(),
        }))
    }
}

/// The service of shard `index` over `storage` (opened by
/// [`crate::storage::Backend::open`] from `cfg`), owning the slots `map`
/// gives it, for the all-in-one binary to call in-process; [`build`] wraps
/// it for the network.
pub fn service(
    storage: Arc<dyn Storage>,
    raw: &RawSettings,
    cfg: &crate::config::ShardConfig,
    index: u32,
    map: Arc<LiveMap>,
) -> Result<ShardService, String> {
    crate::metrics::watch_map(&map, index);
    let shard = Arc::new(Shard::new(
        storage,
        ShardSettings {
            index,
            map: Arc::clone(&map),
            grants: kinto_model::grants::with_kinto_defaults(raw.grants()),
            features: crate::domain::Features::from_raw(raw)?,
            cache_entries: cfg.cache_entries(),
            read_ahead: cfg.read_ahead(),
        },
    ));
    let lease = crate::lease::Lease::new(Arc::clone(&map), cfg.placement_lease());
    let mover = crate::moves::Mover::attach(index, Arc::clone(&shard), map)?;
    Ok(ShardService {
        lease,
        shard,
        metrics: OpMetrics::new(index),
        timeout: cfg.request_timeout(),
        gate: crate::admission::Gate::new(index, cfg.admission.clone()),
        mover,
        drain: crate::drain::Drain::new(),
    })
}

/// The servers of shard `index` over `storage` ([`build`]), and their stop.
pub struct Servers {
    pub shard: ShardServer<ShardService>,
    pub admin: ShardAdminServer<crate::admin::AdminService>,
    pub drain: Arc<crate::drain::Drain>,
}

/// The gRPC servers of shard `index` over `storage`: `Shard`, and the
/// `ShardAdmin` of its operator.
pub fn build(
    storage: Arc<dyn Storage>,
    raw: &RawSettings,
    cfg: &crate::config::ShardConfig,
    index: u32,
    map: Arc<LiveMap>,
    shared_map: Option<Arc<dyn kinto_placement::store::MapStore>>,
) -> Result<Servers, String> {
    let service = service(storage, raw, cfg, index, Arc::clone(&map))?;
    let fence = crate::storage::shard_fence(cfg);
    let admin = crate::admin::build(index, map, service.mover.clone(), shared_map, fence);
    let drain = service.drain();
    let shard = ShardServer::new(service)
        .max_decoding_message_size(64 * 1024 * 1024)
        .max_encoding_message_size(64 * 1024 * 1024);
    Ok(Servers {
        shard,
        admin,
        drain,
    })
}

/// Serves `servers` (behind the same TLS) on an already-bound listener,
/// with `server` from [`crate::tls::transport`] (TLS or not), until
/// `signal` resolves and the stop of [`crate::drain`] is over: the
/// listener closes at the signal, the open connections once no call runs
/// and `refuse_for` has passed.
pub async fn serve(
    servers: Servers,
    listener: tokio::net::TcpListener,
    mut server: tonic::transport::Server,
    signal: impl std::future::Future<Output = ()> + Send + 'static,
    refuse_for: Duration,
) -> Result<(), String> {
    use futures::StreamExt;
    let Servers {
        shard,
        admin,
        drain,
    } = servers;
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    // The listener is dropped when the stop begins (connections refused),
    // while the accept loop, which ends when the stream does, goes on.
    let stopped = {
        let drain = Arc::clone(&drain);
        async move { drain.stopped().await }
    };
    let incoming = incoming
        .take_until(Box::pin(stopped))
        .chain(futures::stream::pending());
    server
        .add_service(shard)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, drain.run(signal, refuse_for))
        .await
        .map_err(|e| e.to_string())
}

/// Binds `addr`, returning the listener and the address actually bound.
pub async fn bind(addr: &str) -> Result<(tokio::net::TcpListener, SocketAddr), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, local))
}
