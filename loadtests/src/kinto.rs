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

/// Makes `user` the identity of every request of this goose user.
pub async fn sign_in(user: &mut GooseUser, name: &str) -> TransactionResult {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&basic(name)) {
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
