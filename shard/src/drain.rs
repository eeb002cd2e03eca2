//! A shard's stop (SIGTERM, e.g. a rolling restart): no acknowledged write
//! lost, and no operation left for the gateway to guess about.
//!
//! On the signal the shard closes its listening socket (a new connection is
//! refused, which the gateway knows ran nothing), refuses every new call on
//! the connections already open with [`ErrorKind::NotRun`] before it has any
//! effect, and lets the calls already running finish and answer. Once none
//! runs, it keeps refusing for `shutdown_refuse_ms`, so that a call sent
//! just before the last one ended meets a refusal rather than the
//! connection's close (an HTTP/2 GOAWAY the gateway cannot tell from a
//! failure mid-call), then closes the connections and the store. The
//! gateway retries refused and unconnected calls until the request's
//! deadline (`gateway/src/retry.rs`), so a restart shorter than that is
//! invisible to clients.

use kinto_proto::{ErrorKind, KintoError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};

/// The calls running on a shard, and whether it is stopping.
#[derive(Debug)]
pub struct Drain {
    stopping: watch::Sender<bool>,
    running: AtomicUsize,
    /// Set (with `idle` notified) when `running` drops to 0 while stopping.
    idle: Notify,
    /// Read in [`Drain::enter`] without the watch's lock.
    refusing: AtomicBool,
}

/// One admitted call: counted until dropped.
pub struct Pass(Arc<Drain>);

impl Drop for Pass {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, SeqCst) == 1 && self.0.refusing.load(SeqCst) {
            self.0.idle.notify_waiters();
        }
    }
}

impl Drain {
    pub fn new() -> Arc<Self> {
        Arc::new(Drain {
            stopping: watch::Sender::new(false),
            running: AtomicUsize::new(0),
            idle: Notify::new(),
            refusing: AtomicBool::new(false),
        })
    }

    /// Admits a call, or refuses it (before any effect) once stopping.
    /// The count goes up before the flag is read and [`Drain::stop`] sets
    /// the flag before it reads the count, so no call slips between them.
    pub fn enter(self: &Arc<Self>) -> Result<Pass, KintoError> {
        self.running.fetch_add(1, SeqCst);
        let pass = Pass(Arc::clone(self));
        if self.refusing.load(SeqCst) {
            return Err(KintoError::new(ErrorKind::NotRun)
                .with_details(serde_json::Value::String("the shard is stopping".into())));
        }
        Ok(pass)
    }

    /// Starts refusing new calls.
    pub fn stop(&self) {
        self.refusing.store(true, SeqCst);
        self.stopping.send_replace(true);
    }

    /// Resolves once [`Drain::stop`] was called.
    pub async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        // The sender lives in `self`: the wait cannot fail.
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Resolves when no admitted call runs (after [`Drain::stop`]).
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running.load(SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// The whole stop: waits for `signal`, refuses new calls, waits for the
    /// running ones, keeps refusing for `refuse_for`. The server closes its
    /// connections when this resolves.
    pub async fn run(
        self: Arc<Self>,
        signal: impl std::future::Future<Output = ()>,
        refuse_for: Duration,
    ) {
        signal.await;
        self.stop();
        let running = self.running.load(SeqCst);
        tracing::info!("stopping: refusing new operations, finishing {running} running");
        self.idle().await;
        tokio::time::sleep(refuse_for).await;
        tracing::info!("stopping: no operation runs, closing connections");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stopping_shard_refuses_new_calls_and_waits_for_running_ones() {
        let drain = Drain::new();
        let running = drain.enter().expect("admitted before the stop");
        drain.stop();
        let refused = drain.enter().err().expect("refused after the stop");
        assert_eq!(refused.kind, ErrorKind::NotRun);
        assert_eq!(refused.to_status().code(), tonic::Code::Unavailable);
        // A refused call does not count as running.
        let idle = tokio::spawn({
            let drain = Arc::clone(&drain);
            async move { drain.idle().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!idle.is_finished(), "a call still runs");
        drop(running);
        tokio::time::timeout(Duration::from_secs(5), idle)
            .await
            .expect("idle once the last call ended")
            .expect("task");
    }

    #[tokio::test]
    async fn the_stop_ends_after_the_refusal_period() {
        let drain = Drain::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let stop = tokio::spawn(Arc::clone(&drain).run(
            async {
                let _ = rx.await;
            },
            Duration::from_millis(50),
        ));
        assert!(drain.enter().is_ok());
        tx.send(()).expect("signal");
        tokio::time::timeout(Duration::from_secs(5), drain.stopped())
            .await
            .expect("stopping");
        assert!(drain.enter().is_err());
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), stop)
            .await
            .expect("ends")
            .expect("task");
        assert!(started.elapsed() >= Duration::from_millis(40));
    }

    /// A shard server (embedded store, one shard) stopped by its signal:
    /// the listener closes, a call on a connection opened before is refused
    /// as not run, and the server ends once the refusal period is over.
    #[tokio::test]
    async fn a_stopping_server_refuses_connections_and_calls_then_ends() {
        use kinto_proto::pb::shard_client::ShardClient;
        use kinto_proto::pb::{HealthRequest, Operation};
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = kinto_runtime::settings::RawSettings::default();
        let cfg = crate::config::ShardConfig::from_raw(&raw).expect("config");
        let storage: Arc<dyn crate::storage::Storage> =
            crate::storage::embedded::EmbeddedStorage::open(
                dir.path(),
                Duration::ZERO,
                1 << 20,
                1 << 20,
            )
            .expect("store");
        let servers =
            crate::server::build(storage, &raw, &cfg, 0, crate::placement::fixed(1), None)
                .expect("build");
        let drain = Arc::clone(&servers.drain);
        let (listener, addr) = crate::server::bind("127.0.0.1:0").await.expect("bind");
        let (signal, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::server::serve(
            servers,
            listener,
            tonic::transport::Server::builder(),
            async {
                let _ = stop.await;
            },
            // Long enough for the checks below to run inside it.
            Duration::from_secs(2),
        ));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
            .expect("connect");
        let mut client = ShardClient::new(channel);
        client.health(HealthRequest {}).await.expect("served");
        signal.send(()).expect("signal");
        drain.stopped().await;
        // The listener closes as the stop begins: new connections are refused
        // while the connections already open still get refusals.
        let refused = async {
            while tokio::net::TcpStream::connect(addr).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), refused)
            .await
            .expect("the listener closed");
        let status = client
            .execute(Operation::default())
            .await
            .expect_err("refused");
        assert_eq!(KintoError::from_status(&status).kind, ErrorKind::NotRun);
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("the server ends")
            .expect("task")
            .expect("served without error");
    }
}
