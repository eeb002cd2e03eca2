//! Calls to identity providers. Each answer is one of: the document, a
//! refusal of the token (the provider said 4xx), or unavailable (network
//! error, timeout, 5xx, an answer we cannot read): unavailable becomes 503,
//! so a provider outage never lets a request through, nor turns a valid
//! user into an anonymous one.

use kinto_proto::{ErrorKind, KintoError};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// What a provider said.
pub enum Answer<T> {
    Ok(T),
    /// A 4xx: the token is not (or no longer) valid.
    Refused,
}

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new(timeout_seconds: u64) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(timeout_seconds))
            .connect_timeout(Duration::from_secs(timeout_seconds))
            // A provider's redirect could send a bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("identity provider client: {e}"))?;
        Ok(Http { client })
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<Answer<T>, KintoError> {
        let mut req = self.client.get(url);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        read(url, req.send().await).await
    }

    pub async fn post_json<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<Answer<T>, KintoError> {
        read(url, self.client.post(url).json(body).send().await).await
    }

    pub async fn post_form<T: DeserializeOwned>(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Answer<T>, KintoError> {
        read(url, self.client.post(url).form(form).send().await).await
    }

    /// The raw body of a form POST, whatever its status (the OpenID token
    /// exchange forwards the provider's answer as it is).
    pub async fn post_form_text(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<String, KintoError> {
        let resp = self
            .client
            .post(url)
            .form(form)
            .send()
            .await
            .map_err(|e| unavailable(url, &e))?;
        resp.text().await.map_err(|e| unavailable(url, &e))
    }
}

async fn read<T: DeserializeOwned>(
    url: &str,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<Answer<T>, KintoError> {
    let resp = sent.map_err(|e| unavailable(url, &e))?;
    let status = resp.status();
    if status.is_client_error() && status.as_u16() != 429 {
        return Ok(Answer::Refused);
    }
    if !status.is_success() {
        return Err(unavailable(url, &format!("status {status}")));
    }
    resp.json::<T>()
        .await
        .map(Answer::Ok)
        .map_err(|e| unavailable(url, &e))
}

/// A 503 for an unreachable provider, logged with its URL (which never holds
/// a token: tokens travel in headers and bodies only).
pub fn unavailable(url: &str, error: &dyn std::fmt::Display) -> KintoError {
    // reqwest's errors name the URL, never headers or bodies.
    tracing::warn!(url, error = %error, "identity provider unavailable");
    KintoError::new(ErrorKind::Unavailable)
}
