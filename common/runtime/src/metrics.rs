//! The process's Prometheus registry as text: the gateway's `/__metrics__`
//! renders it (gateway and in-process shards alike), and a shard in its own
//! process serves it on `metrics_bind`.

/// Every metric of this process, in Prometheus' text format.
pub fn render() -> String {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let _ = prometheus::TextEncoder::new().encode(&prometheus::gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Serves [`render`] on `bind`. Plain HTTP/1.0, any path: a scraper needs
/// nothing more, and this keeps an HTTP server out of the shard.
pub async fn serve(bind: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot bind metrics_bind {bind}: {e}"))?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let body = render();
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    Ok(())
}
