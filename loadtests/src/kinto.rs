//! Kinto requests as goose requests: named for the report, with the status
//! each one must answer (anything else counts as an error).

use goose::goose::GooseResponse;
use goose::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use serde_json::Value;

/// Every load user shares this password; identities differ by name.
pub const PASSWORD: &str = "load";

/// `Authorization` value for Basic `user:PASSWORD`.
pub fn basic(user: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
    format!("Basic {token}")
}

/// Bearer tokens to sign in with instead of Basic credentials: the lines of
/// the file `KINTO_LOAD_BEARER_TOKENS` names, one per goose user in turn.
/// The identity benchmark (`bench.py --identity-rounds`) compares the same
/// mix signed in both ways.
fn bearer_tokens() -> &'static [String] {
    static TOKENS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TOKENS.get_or_init(|| {
        std::env::var("KINTO_LOAD_BEARER_TOKENS")
            .ok()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .map(|text| {
                text.lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The `Authorization` value of the next goose user signed in as `name`.
fn authorization(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let tokens = bearer_tokens();
    if tokens.is_empty() {
        return basic(name);
    }
    let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("Bearer {}", tokens[i % tokens.len()])
}

/// Makes `user` the identity of every request of this goose user (Basic
/// `name`, or the next bearer token when the run was given some).
pub async fn sign_in(user: &mut GooseUser, name: &str) -> TransactionResult {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&authorization(name)) {
        headers.insert(AUTHORIZATION, v);
    }
    let builder = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(std::time::Duration::from_secs(60));
    user.set_client_builder(builder).await?;
    Ok(())
}

/// Kinto's version prefix, which clients keep in their server URL. Kinto
/// answers a path without it with a 307 to the prefixed one, so leaving it
/// out would make every operation two requests.
pub const PREFIX: &str = "/v1";

/// One request to the API path `path` (under [`PREFIX`]): `name` in the
/// report, `expect` the only good status (0: any 2xx, goose's default). A
/// redirected request is an error: the load would no longer be the one
/// the scenario describes.
pub async fn send(
    user: &mut GooseUser,
    name: &str,
    method: GooseMethod,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, String)],
    expect: u16,
) -> Result<GooseResponse, Box<TransactionError>> {
    let path = format!("{PREFIX}{path}");
    let mut rb = user.get_request_builder(&method, &path)?;
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let mut request = GooseRequest::builder()
        .name(name)
        .path(path.as_str())
        .method(method)
        .set_request_builder(rb);
    if expect != 0 {
        request = request.expect_status_code(expect);
    }
    let mut r = user.request(request.build()).await?;
    if r.request.redirected {
        let to = r.request.final_url.clone();
        user.set_failure(&format!("redirected to {to}"), &mut r.request, None, None)?;
    }
    Ok(r)
}

/// The unquoted ETag of a response, if any.
pub fn etag(r: &GooseResponse) -> Option<String> {
    let resp = r.response.as_ref().ok()?;
    let v = resp.headers().get("etag")?.to_str().ok()?;
    Some(v.trim_matches('"').to_owned())
}

/// The JSON body (consumes the response).
pub async fn json(r: GooseResponse) -> Option<Value> {
    r.response.ok()?.json().await.ok()
}
