//! The address a request is limited by: the socket peer, unless that peer
//! is a trusted proxy and `trusted_proxy_header` names who it forwards for.
//! The header is read right to left, skipping trusted proxies, because only
//! the entries our own proxies appended are believable: a client can put
//! anything at the left end.

use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, Default)]
pub struct Proxies {
    header: Option<HeaderName>,
    ranges: Vec<IpNet>,
}

impl Proxies {
    pub fn new(header: Option<&str>, ranges: &[String]) -> Result<Self, String> {
        let header = header
            .map(|h| {
                HeaderName::try_from(h.to_ascii_lowercase())
                    .map_err(|_| format!("trusted_proxy_header: `{h}` is not a header name"))
            })
            .transpose()?;
        let ranges = ranges
            .iter()
            .map(|r| {
                r.parse::<IpNet>()
                    .or_else(|_| r.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("trusted_proxies: `{r}` is not an address or CIDR range"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Proxies { header, ranges })
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(&ip))
    }

    /// The client's address, from the socket `peer` and `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let Some(header) = &self.header else {
            return peer;
        };
        if !self.trusted(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all(header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusted(ip) {
                        break;
                    }
                }
                // A garbled entry: nothing left of it can be believed.
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().expect("header"));
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_trusted_proxies_are_believed_and_only_their_entries() {
        let p = Proxies::new(Some("X-Forwarded-For"), &["10.0.0.0/8".into()]).expect("ok");
        let h = headers("6.6.6.6, 1.2.3.4, 10.0.0.2");
        assert_eq!(p.client(ip("10.0.0.1"), &h), ip("1.2.3.4"));
        assert_eq!(p.client(ip("8.8.8.8"), &h), ip("8.8.8.8"));
        assert_eq!(p.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        assert_eq!(
            p.client(ip("10.0.0.1"), &headers("junk, 10.0.0.3")),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn without_a_header_setting_the_peer_is_the_client() {
        let p = Proxies::new(None, &["10.0.0.0/8".into()]).expect("ok");
        assert_eq!(
            p.client(ip("10.0.0.1"), &headers("1.2.3.4")),
            ip("10.0.0.1")
        );
        assert!(Proxies::new(None, &["nope".into()]).is_err());
    }
}
