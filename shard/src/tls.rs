//! TLS of the shard's gRPC port (docs/security.md). A shard believes the
//! caller identity each request carries, so off loopback it serves only
//! callers with a client certificate from the gateways' CA, unless told
//! `grpc_insecure`.

use crate::config::ShardConfig;
use kinto_runtime::tls;
use std::time::Duration;
use tonic::transport::{Server, ServerTlsConfig};

/// A client that connects and never finishes its handshake is dropped after
/// this, so it cannot hold a connection slot.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The TLS configuration of `cfg`, or `None` to serve plaintext (allowed on
/// loopback, or with `grpc_insecure`).
pub fn server_tls(cfg: &ShardConfig) -> Result<Option<ServerTlsConfig>, String> {
    let files = tls::pair(
        ("grpc_server_cert_file", &cfg.grpc_server_cert_file),
        ("grpc_server_key_file", &cfg.grpc_server_key_file),
    )?;
    let client_ca = cfg.grpc_client_ca_file.as_deref();
    let loopback = bind_is_loopback(&cfg.bind);
    if client_ca.is_none() && !loopback && !cfg.grpc_insecure {
        return Err(format!(
            "bind {} is not a loopback address: set grpc_server_cert_file, grpc_server_key_file \
             and grpc_client_ca_file so only gateways can call this shard (docs/security.md), \
             or grpc_insecure = true",
            cfg.bind
        ));
    }
    let Some((cert, key)) = files else {
        return match client_ca {
            Some(_) => Err(
                "grpc_client_ca_file is set but grpc_server_cert_file and grpc_server_key_file \
                 are not: client certificates are checked in a TLS handshake"
                    .into(),
            ),
            None => Ok(None),
        };
    };
    let identity = tls::identity(
        ("grpc_server_cert_file", cert),
        ("grpc_server_key_file", key),
    )?;
    let mut config = ServerTlsConfig::new()
        .identity(identity)
        .timeout(HANDSHAKE_TIMEOUT);
    if let Some(ca) = client_ca {
        config = config.client_ca_root(tls::certificates("grpc_client_ca_file", ca)?);
    }
    Ok(Some(config))
}

/// The gRPC server of `cfg`, its TLS (if any) already built, so a key that
/// does not match its certificate stops start-up before the port opens.
pub fn transport(cfg: &ShardConfig) -> Result<Server, String> {
    let server = Server::builder();
    match server_tls(cfg)? {
        Some(tls) => server.tls_config(tls).map_err(|e| {
            format!(
                "grpc_server_cert_file, grpc_server_key_file, grpc_client_ca_file: {}",
                tls::causes(&e)
            )
        }),
        None => Ok(server),
    }
}

/// Is the host of `bind` (`host:port`) loopback?
fn bind_is_loopback(bind: &str) -> bool {
    bind.rsplit_once(':')
        .is_some_and(|(host, _)| tls::is_loopback_host(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinto_runtime::settings::RawSettings;

    /// Settings as the environment gives them (`KINTO_GRPC_INSECURE=true`).
    fn config(pairs: &[(&str, &str)]) -> ShardConfig {
        let vars = pairs
            .iter()
            .map(|(k, v)| (format!("KINTO_{}", k.to_uppercase()), (*v).to_owned()));
        let raw = RawSettings(Default::default()).with_env(vars);
        ShardConfig::from_raw(&raw).expect("valid settings")
    }

    #[test]
    fn plaintext_only_on_loopback_unless_insecure() {
        assert!(server_tls(&config(&[])).expect("default bind").is_none());
        assert!(server_tls(&config(&[("bind", "[::1]:9000")])).is_ok());
        let err = server_tls(&config(&[("bind", "0.0.0.0:9000")])).unwrap_err();
        assert!(err.contains("grpc_client_ca_file"), "{err}");
        let insecure = config(&[("bind", "0.0.0.0:9000"), ("grpc_insecure", "true")]);
        assert!(server_tls(&insecure).expect("insecure").is_none());
    }

    #[test]
    fn a_client_ca_needs_a_server_certificate() {
        let cfg = config(&[("grpc_client_ca_file", "ca.pem")]);
        let err = server_tls(&cfg).unwrap_err();
        assert!(err.starts_with("grpc_client_ca_file is set"), "{err}");
        let cfg = config(&[("grpc_server_key_file", "key.pem")]);
        let err = server_tls(&cfg).unwrap_err();
        assert!(err.starts_with("grpc_server_key_file is set"), "{err}");
    }

    #[test]
    fn missing_files_are_named() {
        let cfg = config(&[
            ("grpc_server_cert_file", "/nonexistent/shard.pem"),
            ("grpc_server_key_file", "/nonexistent/shard.key"),
        ]);
        let err = server_tls(&cfg).unwrap_err();
        assert!(
            err.starts_with("grpc_server_cert_file: cannot read"),
            "{err}"
        );
    }
}
