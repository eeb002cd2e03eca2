//! The gateway's admission settings (docs/configuration.md, "Admission
//! control"). Every rate limit is off unless set, and the request limits
//! are far above what Kinto's clients send, so a default deployment
//! behaves as Kinto does.

use kinto_runtime::settings::{de_list, de_opt_string};
use serde::Deserialize;

fn default_max_keys() -> usize {
    100_000
}
fn default_max_url_bytes() -> usize {
    16 * 1024
}
/// Waitress's (Kinto's server) `max_request_header_size`.
fn default_max_header_bytes() -> usize {
    256 * 1024
}
fn default_max_headers() -> usize {
    100
}
fn default_header_read_timeout() -> u64 {
    10
}
fn default_body_read_timeout() -> u64 {
    10
}
fn default_refusal_delay_ms() -> u64 {
    500
}
fn default_max_delayed_refusals() -> usize {
    4096
}

/// A rate: `per_second` requests on average, `burst` at once (at least 1;
/// `per_second` rounded up when unset).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    fn of(per_second: Option<f64>, burst: Option<u32>) -> Option<Rate> {
        let per_second = per_second.filter(|r| *r > 0.0 && r.is_finite())?;
        let burst = burst.unwrap_or(per_second.ceil() as u32).max(1);
        Some(Rate { per_second, burst })
    }

    /// `rate` or `rate/burst`, as in `ratelimit_bucket_overrides`.
    fn parse(text: &str) -> Result<Rate, String> {
        let (rate, burst) = match text.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (text, None),
        };
        let rate: f64 = rate
            .trim()
            .parse()
            .map_err(|_| format!("`{text}`: not a rate"))?;
        let burst = match burst {
            Some(b) => Some(
                b.trim()
                    .parse::<u32>()
                    .map_err(|_| format!("`{text}`: not a burst"))?,
            ),
            None => None,
        };
        Rate::of(Some(rate), burst).ok_or_else(|| format!("`{text}`: the rate must be above 0"))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AdmissionSettings {
    /// Requests per second for the whole gateway (every client together).
    #[serde(default)]
    pub ratelimit_global_per_second: Option<f64>,
    #[serde(default)]
    pub ratelimit_global_burst: Option<u32>,
    /// Requests per second for one authenticated user id.
    #[serde(default)]
    pub ratelimit_user_per_second: Option<f64>,
    #[serde(default)]
    pub ratelimit_user_burst: Option<u32>,
    /// Requests per second for one client address (anonymous or not).
    #[serde(default)]
    pub ratelimit_address_per_second: Option<f64>,
    #[serde(default)]
    pub ratelimit_address_burst: Option<u32>,
    /// Requests per second for one app (per-app scoped users), all its
    /// users together.
    #[serde(default)]
    pub ratelimit_app_per_second: Option<f64>,
    #[serde(default)]
    pub ratelimit_app_burst: Option<u32>,
    /// `bucket=rate` or `bucket=rate/burst` items: a user's requests to
    /// such a bucket count against this rate, for that bucket alone,
    /// instead of the user's rate.
    #[serde(default, deserialize_with = "de_list")]
    pub ratelimit_bucket_overrides: Vec<String>,
    /// How long a 429 of a rate limit is held before it is sent (never
    /// longer than its `Retry-After`; 0: at once). See `admission::tarpit`.
    #[serde(default = "default_refusal_delay_ms")]
    pub ratelimit_refusal_delay_ms: u64,
    /// Most 429s held at once; beyond, they are sent at once.
    #[serde(default = "default_max_delayed_refusals")]
    pub ratelimit_max_delayed_refusals: usize,
    /// Keys remembered per limiter before idle ones are dropped early.
    #[serde(default = "default_max_keys")]
    pub ratelimit_max_keys: usize,
    /// The header a trusted proxy puts the client address in
    /// (`X-Forwarded-For`); read only from `trusted_proxies`.
    #[serde(default, deserialize_with = "de_opt_string")]
    pub trusted_proxy_header: Option<String>,
    /// CIDR ranges of the proxies whose `trusted_proxy_header` is believed.
    #[serde(default, deserialize_with = "de_list")]
    pub trusted_proxies: Vec<String>,
    /// Longest request target (path and querystring), in bytes: 414 beyond.
    #[serde(default = "default_max_url_bytes")]
    pub max_url_bytes: usize,
    /// Most bytes of request headers (names and values): 431 beyond.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most request headers: 431 beyond.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// A connection that has not sent a whole request head by then is closed.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_seconds: u64,
    /// A request whose body has not arrived by then answers 408.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_seconds: u64,
    /// The rate settings, parsed by [`AdmissionSettings::check`].
    #[serde(skip)]
    pub rates: Rates,
    /// `trusted_proxy_header` and `trusted_proxies`, parsed likewise.
    #[serde(skip)]
    pub proxies: super::client_address::Proxies,
}

/// The limits of [`AdmissionSettings`], checked and parsed.
#[derive(Debug, Clone, Default)]
pub struct Rates {
    pub global: Option<Rate>,
    pub user: Option<Rate>,
    pub address: Option<Rate>,
    pub app: Option<Rate>,
    pub buckets: Vec<(String, Rate)>,
}

impl AdmissionSettings {
    /// Parses the settings that are text, or says which is wrong.
    pub fn check(&mut self) -> Result<(), String> {
        self.rates = self.parse_rates()?;
        self.proxies = super::client_address::Proxies::new(
            self.trusted_proxy_header.as_deref(),
            &self.trusted_proxies,
        )?;
        Ok(())
    }

    fn parse_rates(&self) -> Result<Rates, String> {
        let buckets = self
            .ratelimit_bucket_overrides
            .iter()
            .map(|item| {
                let (bucket, rate) = item.split_once('=').ok_or_else(|| {
                    format!("ratelimit_bucket_overrides: `{item}` is not bucket=rate")
                })?;
                let rate =
                    Rate::parse(rate).map_err(|e| format!("ratelimit_bucket_overrides: {e}"))?;
                Ok((bucket.to_owned(), rate))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Rates {
            global: Rate::of(
                self.ratelimit_global_per_second,
                self.ratelimit_global_burst,
            ),
            user: Rate::of(self.ratelimit_user_per_second, self.ratelimit_user_burst),
            address: Rate::of(
                self.ratelimit_address_per_second,
                self.ratelimit_address_burst,
            ),
            app: Rate::of(self.ratelimit_app_per_second, self.ratelimit_app_burst),
            buckets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_and_without_burst() {
        assert_eq!(
            Rate::parse("2.5/10"),
            Ok(Rate {
                per_second: 2.5,
                burst: 10
            })
        );
        assert_eq!(Rate::parse("3").map(|r| r.burst), Ok(3));
        assert!(Rate::parse("0").is_err());
        assert!(Rate::parse("x/1").is_err());
        assert_eq!(Rate::of(None, Some(3)), None);
    }
}
