//! Certificate and key files of the gateway -> shard channel (docs/security.md),
//! read and parsed at start-up: a wrong path or file stops the process with a
//! message naming its setting, rather than failing every call later.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, Identity};

/// The PEM certificates of setting `setting` (a CA, or a certificate chain).
pub fn certificates(setting: &str, path: &str) -> Result<Certificate, String> {
    let pem = read(setting, path)?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .try_fold(0usize, |n, c| c.map(|_| n + 1))
        .map_err(|e| format!("{setting}: {path} is not PEM: {e}"))?;
    if count == 0 {
        return Err(format!("{setting}: no certificate in {path}"));
    }
    Ok(Certificate::from_pem(pem))
}

/// A certificate chain and its private key, from two settings.
pub fn identity(cert: (&str, &str), key: (&str, &str)) -> Result<Identity, String> {
    let chain = certificates(cert.0, cert.1)?;
    let (setting, path) = key;
    let pem = read(setting, path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("{setting}: no private key in {path}: {e}"))?;
    Ok(Identity::from_pem(chain.into_inner(), pem))
}

/// Both settings of a pair, or neither: one alone is a mistake worth stopping for.
pub fn pair<'a>(
    a: (&str, &'a Option<String>),
    b: (&str, &'a Option<String>),
) -> Result<Option<(&'a str, &'a str)>, String> {
    match (a.1, b.1) {
        (Some(x), Some(y)) => Ok(Some((x, y))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(format!("{} is set but {} is not", a.0, b.0)),
        (None, Some(_)) => Err(format!("{} is set but {} is not", b.0, a.0)),
    }
}

/// The client side of the channel to the shards, from the settings
/// `grpc_server_ca_file`, `grpc_client_cert_file` and `grpc_client_key_file`
/// (the gateway's and the operator's): `None` for plaintext.
pub fn shard_client(
    ca: &Option<String>,
    cert: &Option<String>,
    key: &Option<String>,
) -> Result<Option<tonic::transport::ClientTlsConfig>, String> {
    let identity = pair(
        ("grpc_client_cert_file", cert),
        ("grpc_client_key_file", key),
    )?;
    match (ca, identity) {
        (None, Some(_)) => Err(
            "grpc_client_cert_file is set but grpc_server_ca_file is not: the shards' \
             certificates need a CA to be checked against"
                .into(),
        ),
        (None, None) => Ok(None),
        (Some(ca), identity) => {
            let mut config = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(certificates("grpc_server_ca_file", ca)?);
            if let Some((cert, key)) = identity {
                config = config.identity(self::identity(
                    ("grpc_client_cert_file", cert),
                    ("grpc_client_key_file", key),
                )?);
            }
            Ok(Some(config))
        }
    }
}

/// Is `host` (an IP address, `[v6]`, or a name) this machine's loopback?
/// Only then may the channel run without mutual TLS by default.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

/// An error with its sources, which tonic's transport errors keep the reason
/// in (a source some wrapper already prints is not repeated).
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn read(setting: &str, path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{setting}: cannot read {path}: {e}"))
}

/// A connected channel to the shard gRPC port at `address`, over `tls` when
/// given: the admin tools' one way to reach a shard (the coordinator, the
/// operator, `kinto-shard admin`), errors naming the address. `call`
/// bounds each call on the channel; `None` leaves that to the caller (a
/// streamed copy may take long).
pub async fn shard_channel(
    address: &str,
    tls: Option<&tonic::transport::ClientTlsConfig>,
    connect: std::time::Duration,
    call: Option<std::time::Duration>,
) -> Result<tonic::transport::Channel, String> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(address.to_owned())
        .map_err(|e| format!("bad address {address}: {e}"))?
        .connect_timeout(connect);
    if let Some(call) = call {
        endpoint = endpoint.timeout(call);
    }
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls.clone())
            .map_err(|e| format!("{address}: {}", causes(&e)))?;
    }
    // `connect` bounds the TCP connect only; a stopped server's kernel
    // completes that for it, so the TLS and HTTP/2 handshakes are bounded too.
    tokio::time::timeout(connect * 2, endpoint.connect())
        .await
        .map_err(|_| format!("{address}: no answer within {:?}", connect * 2))?
        .map_err(|e| format!("{address}: {}", causes(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "0.0.0.0",
            "::",
            "[::]",
            "10.0.0.1",
            "shard-1",
            "example.com",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn a_pair_is_both_or_neither() {
        let (set, unset) = (Some("x".to_owned()), None);
        assert_eq!(pair(("a", &set), ("b", &set)), Ok(Some(("x", "x"))));
        assert_eq!(pair(("a", &unset), ("b", &unset)), Ok(None));
        let err = pair(("a", &set), ("b", &unset)).unwrap_err();
        assert_eq!(err, "a is set but b is not");
        let err = pair(("a", &unset), ("b", &set)).unwrap_err();
        assert_eq!(err, "b is set but a is not");
    }

    #[test]
    fn missing_and_malformed_files_name_their_setting() {
        let err = certificates("grpc_server_ca_file", "/nonexistent/ca.pem").unwrap_err();
        assert!(err.starts_with("grpc_server_ca_file: cannot read"), "{err}");
        let dir = std::env::temp_dir().join(format!("kinto-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").expect("write");
        let junk = junk.to_str().expect("utf-8 path");
        let err = certificates("grpc_client_ca_file", junk).unwrap_err();
        assert!(
            err.starts_with("grpc_client_ca_file: no certificate"),
            "{err}"
        );
        let err = identity(("c", "/nonexistent"), ("k", junk)).unwrap_err();
        assert!(err.starts_with("c: cannot read"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
