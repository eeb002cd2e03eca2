//! The HTTP connection loop. axum's own `serve` sets no timer, so a client
//! that sends its request head a byte at a time would keep its connection
//! (and its task) forever; here every connection gets
//! `header_read_timeout_seconds` to send a whole head, and a head larger
//! than the admission limits allow is cut off by hyper (the limits
//! themselves answer in Kinto's format, see `admission::requests`).

use crate::admission::settings::AdmissionSettings;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown`, then lets the
/// connections in progress finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    settings: &AdmissionSettings,
    shutdown: impl Future<Output = ()>,
) {
    let builder = builder(settings);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = tower::ServiceExt::map_request(
            router.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.map(Body::new)
            },
        );
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
    graceful.shutdown().await;
}

fn builder(settings: &AdmissionSettings) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    let head = settings.max_url_bytes + settings.max_header_bytes;
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            settings.header_read_timeout_seconds.max(1),
        ))
        // Room for a head somewhat over the limits, so that those answer
        // in Kinto's format; hyper refuses what is far over them.
        .max_buf_size((2 * head).max(16 * 1024))
        .max_headers(2 * settings.max_headers + 16);
    builder.http2().timer(TokioTimer::new());
    builder
}
