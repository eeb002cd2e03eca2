//! TLS of the gateway's gRPC calls to shards (docs/security.md): the CA the
//! shards' certificates chain to, and the client certificate that proves to
//! a shard this caller is a gateway.

use crate::config::GatewayConfig;
use kinto_runtime::tls;
use std::time::Duration;
use tonic::transport::ClientTlsConfig;

/// A shard that accepts the connection but stalls the handshake fails the
/// call like an unreachable one (the connect timeout).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// The TLS configuration of `cfg` for every shard, or `None` for plaintext;
/// `shard_urls` are checked against it.
pub fn client_tls(cfg: &GatewayConfig) -> Result<Option<ClientTlsConfig>, String> {
    let config = tls::shard_client(
        &cfg.grpc_server_ca_file,
        &cfg.grpc_client_cert_file,
        &cfg.grpc_client_key_file,
    )?
    .map(|c| c.timeout(HANDSHAKE_TIMEOUT));
    for url in &cfg.shard_urls {
        check_url(url, config.is_some(), cfg.grpc_insecure)?;
    }
    Ok(config)
}

/// `https://` exactly when TLS is configured; `http://` only to loopback
/// unless `insecure`, since whoever sees the channel sees (and could replay)
/// the caller identities it carries.
fn check_url(url: &str, tls: bool, insecure: bool) -> Result<(), String> {
    let uri: tonic::transport::Uri = url
        .parse()
        .map_err(|e| format!("shard_urls: bad shard url {url}: {e}"))?;
    match (uri.scheme_str(), tls) {
        (Some("https"), true) => Ok(()),
        (Some("https"), false) => Err(format!(
            "shard_urls: {url} is https:// but grpc_server_ca_file is not set"
        )),
        (Some("http"), true) => Err(format!(
            "shard_urls: {url} is http:// but grpc_server_ca_file is set: use https://"
        )),
        (Some("http"), false) => match uri.host() {
            Some(host) if tls::is_loopback_host(host) || insecure => Ok(()),
            _ => Err(format!(
                "shard_urls: {url} is plaintext to an address other than loopback: set \
                 grpc_server_ca_file, grpc_client_cert_file and grpc_client_key_file \
                 (docs/security.md), or grpc_insecure = true"
            )),
        },
        _ => Err(format!(
            "shard_urls: {url} must start with http:// or https://"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_match_the_tls_settings() {
        assert!(check_url("http://127.0.0.1:9000", false, false).is_ok());
        assert!(check_url("http://localhost:9000", false, false).is_ok());
        assert!(check_url("https://127.0.0.1:9000", true, false).is_ok());
        let err = check_url("http://10.0.0.2:9000", false, false).unwrap_err();
        assert!(err.contains("grpc_insecure"), "{err}");
        assert!(check_url("http://10.0.0.2:9000", false, true).is_ok());
        let err = check_url("https://127.0.0.1:9000", false, false).unwrap_err();
        assert!(err.contains("grpc_server_ca_file is not set"), "{err}");
        let err = check_url("http://127.0.0.1:9000", true, false).unwrap_err();
        assert!(err.contains("use https://"), "{err}");
        assert!(check_url("127.0.0.1:9000", false, false).is_err());
    }
}
