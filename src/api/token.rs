//! OAuth 2 client credentials: the access token, fetched once, cached, renewed shortly
//! before it expires or when the API refuses it.

use crate::api::ApiError;
use crate::api::http::{self, Caller, RawAnswer};
use crate::api::secret::Secret;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::Mutex;

/// Renew at most this long before expiry (less for short-lived tokens: a tenth of them).
const RENEW_AHEAD: SignedDuration = SignedDuration::from_mins(5);

/// A cached token and when to fetch the next one.
#[derive(Clone, Debug)]
struct Cached {
    token: Secret,
    renew_at: Timestamp,
}

/// The token endpoint's answer.
#[derive(serde::Deserialize)]
struct Granted {
    access_token: Secret,
    expires_in: i64,
}

/// The login endpoint's error answer (`{"error": "invalid_client", ...}`).
#[derive(serde::Deserialize)]
struct Refused {
    error: Option<String>,
}

/// Fetches and caches one OAuth client's access token.
pub struct TokenSource {
    caller: Caller,
    token_url: String,
    client_id: String,
    client_secret: Secret,
    cached: Mutex<Option<Cached>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source for `client_id` at `login_base` (e.g. `https://login.mypurecloud.ie`).
    pub(crate) fn new(
        caller: Caller,
        login_base: &str,
        client_id: String,
        client_secret: Secret,
    ) -> Self {
        Self {
            caller,
            token_url: format!("{login_base}/oauth/token"),
            client_id,
            client_secret,
            cached: Mutex::new(None),
        }
    }

    /// The current token, fetched when there is none or it is about to expire. Callers
    /// that arrive during a fetch wait for it rather than fetching again.
    pub async fn bearer(&self) -> Result<Secret, ApiError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached
            .as_ref()
            .filter(|c| self.caller.clock.now() < c.renew_at)
        {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// The API refused `rejected`: forget it (unless another caller already replaced it)
    /// and answer a fresh token.
    pub async fn renew(&self, rejected: &Secret) -> Result<Secret, ApiError> {
        {
            let mut cached = self.cached.lock().await;
            if cached.as_ref().is_some_and(|c| c.token == *rejected) {
                *cached = None;
            }
        }
        self.bearer().await
    }

    async fn fetch(&self) -> Result<Cached, ApiError> {
        let request = self
            .caller
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .form(&[("grant_type", "client_credentials")]);
        let fetched_at = self.caller.clock.now();
        let answer = self.caller.unlimited("token", request).await?;
        if !answer.is_success() {
            return Err(self.refusal(&answer));
        }
        let granted: Granted = http::json(&answer.body).map_err(|reason| ApiError::Protocol {
            call: "token",
            reason,
        })?;
        let lifetime = SignedDuration::from_secs(granted.expires_in.max(0));
        let ahead = RENEW_AHEAD.min(lifetime / 10);
        Ok(Cached {
            token: granted.access_token,
            renew_at: fetched_at
                .saturating_add(lifetime - ahead)
                .unwrap_or(Timestamp::MAX),
        })
    }

    /// Why the login service refused: an auth error for 4xx, a transient one otherwise.
    fn refusal(&self, answer: &RawAnswer) -> ApiError {
        let code = http::json::<Refused>(&answer.body)
            .ok()
            .and_then(|r| r.error)
            .map_or_else(String::new, |e| format!(" ({e})"));
        let status = answer.status;
        if (400..500).contains(&status) && status != 429 {
            ApiError::Auth(format!(
                "the login service refused client id {:?}: HTTP {status}{code}",
                self.client_id
            ))
        } else {
            ApiError::Transport {
                call: "token",
                reason: format!("the login service answered HTTP {status}{code}"),
            }
        }
    }
}
