//! Which failed shard calls never reached the shard (so a retry cannot
//! run an operation twice), told from the error's source chain.

/// Whether a gRPC failure that carries no Kinto error is proven to have
/// left the shard untouched: the connection could not be made (refused,
/// timed out, no address, TLS handshake), or the shard reset the stream
/// with HTTP/2's `REFUSED_STREAM`, which promises it was not processed
/// (RFC 9113, section 8.7). Anything else (a reset or a closed connection
/// mid-call, a GOAWAY, which h2 also reports for calls the shard ran
/// when the connection later drops, a timeout) may have run.
pub fn unreached(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.is_reset()
                && h2.is_remote()
                && h2.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_proto::pb::shard_client::ShardClient;
    use kinto_proto::pb::Operation;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::net::TcpListener;

    /// `Execute` on a new channel to `addr`, as the gateway calls a shard.
    async fn call(addr: SocketAddr, timeout: Option<Duration>) -> tonic::Status {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect_timeout(Duration::from_secs(2));
        let mut client = ShardClient::new(endpoint.connect_lazy());
        let mut request = tonic::Request::new(Operation::default());
        if let Some(t) = timeout {
            request.set_timeout(t);
        }
        client.execute(request).await.expect_err("the call fails")
    }

    /// What the HTTP/2 server does with the first call it receives.
    #[derive(Clone, Copy)]
    enum Answer {
        Reset(h2::Reason),
        /// Drops the connection: a killed shard.
        Close,
        /// Sends GOAWAY (graceful shutdown), then drops the connection
        /// without answering: a shard killed while it stopped.
        GoAwayThenClose,
        Never,
    }

    /// A one-connection HTTP/2 server on a free port: a shard that got the call.
    async fn server(answer: Answer) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let Ok((io, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut conn) = h2::server::handshake(io).await else {
                return;
            };
            let mut held = Vec::new();
            while let Some(Ok((request, mut respond))) = conn.accept().await {
                match answer {
                    Answer::Reset(reason) => respond.send_reset(reason),
                    Answer::Close => return,
                    Answer::GoAwayThenClose => {
                        conn.graceful_shutdown();
                        // Long enough for the GOAWAY frames to leave.
                        let _ =
                            tokio::time::timeout(Duration::from_millis(200), conn.accept()).await;
                        return;
                    }
                    Answer::Never => held.push((request, respond)),
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_refused_connection_never_reached_the_shard() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("addr")
        };
        let status = call(addr, None).await;
        assert!(unreached(&status), "{status:?}");
        let e = crate::reply::from_status(0, "execute", &status);
        assert_eq!(e.kind, kinto_proto::ErrorKind::NotRun);
        // Still a 503 errno 201 when the retries run out.
        assert_eq!(e.body()["errno"], 201);
    }

    #[tokio::test]
    async fn a_stream_the_shard_refused_never_ran() {
        let status = call(
            server(Answer::Reset(h2::Reason::REFUSED_STREAM)).await,
            None,
        )
        .await;
        assert!(unreached(&status), "{status:?}");
    }

    #[tokio::test]
    async fn failures_after_the_shard_got_the_call_may_have_run() {
        for answer in [
            Answer::Reset(h2::Reason::CANCEL),
            Answer::Reset(h2::Reason::INTERNAL_ERROR),
            Answer::Close,
            Answer::GoAwayThenClose,
        ] {
            let status = call(server(answer).await, None).await;
            assert!(!unreached(&status), "{status:?}");
            let e = crate::reply::from_status(0, "execute", &status);
            assert_eq!(e.kind, kinto_proto::ErrorKind::Unavailable);
        }
        // The deadline passed while the shard held the call.
        let status = call(
            server(Answer::Never).await,
            Some(Duration::from_millis(100)),
        )
        .await;
        assert!(!unreached(&status), "{status:?}");
        // A status from elsewhere, without a cause.
        assert!(!unreached(&tonic::Status::unavailable(
            "connection refused"
        )));
    }
}
