//! Webhook authentication: Standard Webhooks signatures (HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`) and bearer tokens, both compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the sender's unique message id.
pub const HEADER_ID: &str = "webhook-id";
/// The header carrying the send time in Unix seconds.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// The header carrying one or more space-separated `v1,<base64>` signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// The prefix every Standard Webhooks secret carries.
pub const SECRET_PREFIX: &str = "whsec_";
/// How far a timestamp may lie in the past or the future unless configured otherwise.
pub const DEFAULT_TOLERANCE: SignedDuration = SignedDuration::from_secs(300);

/// Why a request failed authentication. Each variant is a distinct, reportable reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A required header is absent (or not visible ASCII).
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// `webhook-timestamp` is not a whole number of seconds.
    #[error("`webhook-timestamp` is not Unix seconds: {0:?}")]
    BadTimestamp(String),
    /// The timestamp is older than the tolerance allows (a possible replay).
    #[error("`webhook-timestamp` is {age_secs} s old, more than the {tolerance_secs} s allowed")]
    Stale {
        /// How old the timestamp is.
        age_secs: i64,
        /// The configured tolerance.
        tolerance_secs: i64,
    },
    /// The timestamp lies further in the future than the tolerance allows.
    #[error(
        "`webhook-timestamp` is {ahead_secs} s in the future, more than the {tolerance_secs} s allowed"
    )]
    Future {
        /// How far ahead the timestamp is.
        ahead_secs: i64,
        /// The configured tolerance.
        tolerance_secs: i64,
    },
    /// `webhook-signature` holds no signature at all.
    #[error("`webhook-signature` is empty")]
    EmptySignature,
    /// Every signature uses a version other than `v1`.
    #[error("`webhook-signature` has no `v1` signature (versions seen: {0})")]
    UnknownVersion(String),
    /// There are `v1` signatures, but none matches any active secret.
    #[error("no signature matches an active secret")]
    NoMatchingSignature,
    /// The `Authorization` header is not `Bearer <token>`.
    #[error("`authorization` is not a bearer token")]
    NotBearer,
    /// The bearer token is not one of the accepted tokens.
    #[error("the bearer token is not accepted")]
    BadToken,
}

/// A configured secret could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret lacks the `whsec_` prefix.
    #[error("a webhook secret must start with `whsec_`")]
    MissingPrefix,
    /// The part after the prefix is not base64.
    #[error("the webhook secret after `whsec_` is not base64")]
    NotBase64,
    /// The secret decodes to nothing.
    #[error("the webhook secret is empty")]
    Empty,
}

/// The HMAC key of one `whsec_` secret, keyed once at parse time. Its `Debug` never shows it.
#[derive(Clone)]
pub struct WebhookSecret(Hmac<Sha256>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = SecretError;

    fn from_str(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        let mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SecretError::Empty)?;
        Ok(Self(mac))
    }
}

impl WebhookSecret {
    /// The raw signature bytes of a message under this secret.
    fn sign(&self, id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
        let mut mac = self.0.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// The `webhook-signature` value a sender would attach (`v1,<base64>`).
    pub fn signature_header(&self, id: &str, timestamp: &str, body: &[u8]) -> String {
        format!("v1,{}", BASE64.encode(self.sign(id, timestamp, body)))
    }
}

/// The three Standard Webhooks headers as they arrived (absent ones are `None`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SignedHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

/// What a successful signature check establishes about the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The sender's message id (the natural delivery id).
    pub id: String,
    /// When the sender says it sent the message.
    pub sent_at: Timestamp,
}

/// Verifies Standard Webhooks signatures against one or more active secrets (rotation).
#[derive(Clone, Debug)]
pub struct SignatureVerifier {
    secrets: Vec<WebhookSecret>,
    tolerance: SignedDuration,
}

impl SignatureVerifier {
    /// A verifier accepting a signature by any of `secrets`, with the default tolerance.
    pub fn new(secrets: Vec<WebhookSecret>) -> Self {
        Self {
            secrets,
            tolerance: DEFAULT_TOLERANCE,
        }
    }

    /// The same verifier with another timestamp tolerance (applied both ways).
    pub fn with_tolerance(self, tolerance: SignedDuration) -> Self {
        Self {
            tolerance: tolerance.abs(),
            ..self
        }
    }

    /// Check headers and body at the instant `now`: timestamp within tolerance, and at least
    /// one `v1` signature made by one of the active secrets.
    pub fn verify(
        &self,
        headers: SignedHeaders<'_>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Verified, AuthError> {
        let id = headers.id.ok_or(AuthError::MissingHeader(HEADER_ID))?;
        let timestamp = headers
            .timestamp
            .ok_or(AuthError::MissingHeader(HEADER_TIMESTAMP))?;
        let signature = headers
            .signature
            .ok_or(AuthError::MissingHeader(HEADER_SIGNATURE))?;
        let sent_at = self.check_timestamp(timestamp, now)?;
        let candidates = v1_signatures(signature)?;
        let expected: Vec<Vec<u8>> = self
            .secrets
            .iter()
            .map(|secret| secret.sign(id, timestamp, body))
            .collect();
        // Compare every pair without stopping early, so timing says nothing about which matched.
        let mut matched = subtle::Choice::from(0);
        for candidate in &candidates {
            for tag in &expected {
                matched |= candidate.as_slice().ct_eq(tag.as_slice());
            }
        }
        if bool::from(matched) {
            Ok(Verified {
                id: id.to_owned(),
                sent_at,
            })
        } else {
            Err(AuthError::NoMatchingSignature)
        }
    }

    fn check_timestamp(&self, text: &str, now: Timestamp) -> Result<Timestamp, AuthError> {
        let bad = || AuthError::BadTimestamp(text.to_owned());
        let seconds: i64 = text.trim().parse().map_err(|_| bad())?;
        let sent_at = Timestamp::from_second(seconds).map_err(|_| bad())?;
        let skew = now.duration_since(sent_at);
        let tolerance_secs = self.tolerance.as_secs();
        if skew > self.tolerance {
            Err(AuthError::Stale {
                age_secs: skew.as_secs(),
                tolerance_secs,
            })
        } else if -skew > self.tolerance {
            Err(AuthError::Future {
                ahead_secs: (-skew).as_secs(),
                tolerance_secs,
            })
        } else {
            Ok(sent_at)
        }
    }
}

/// The decoded `v1` signatures of a `webhook-signature` value. Entries of other versions are
/// ignored unless nothing else is there; entries that are not base64 can match nothing.
fn v1_signatures(header: &str) -> Result<Vec<Vec<u8>>, AuthError> {
    let mut signatures = Vec::new();
    let mut other_versions: Vec<&str> = Vec::new();
    for entry in header.split_ascii_whitespace() {
        match entry.split_once(',') {
            Some(("v1", encoded)) => {
                if let Ok(bytes) = BASE64.decode(encoded) {
                    signatures.push(bytes);
                } else {
                    // Keep the entry so the caller reports a mismatch, not a missing version.
                    signatures.push(Vec::new());
                }
            }
            Some((version, _)) => other_versions.push(version),
            None => other_versions.push(entry),
        }
    }
    if !signatures.is_empty() {
        Ok(signatures)
    } else if other_versions.is_empty() {
        Err(AuthError::EmptySignature)
    } else {
        Err(AuthError::UnknownVersion(other_versions.join(", ")))
    }
}

/// Verifies `Authorization: Bearer <token>` against one or more accepted tokens.
#[derive(Clone)]
pub struct BearerVerifier {
    tokens: Vec<String>,
}

impl std::fmt::Debug for BearerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BearerVerifier({} token(s), <redacted>)",
            self.tokens.len()
        )
    }
}

impl BearerVerifier {
    /// A verifier accepting any of `tokens` (several allow rotation).
    pub fn new(tokens: Vec<String>) -> Self {
        Self { tokens }
    }

    /// Check an `Authorization` header value.
    pub fn verify(&self, authorization: Option<&str>) -> Result<(), AuthError> {
        let value = authorization.ok_or(AuthError::MissingHeader("authorization"))?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let token = token.trim().as_bytes();
        let mut matched = subtle::Choice::from(0);
        for accepted in &self.tokens {
            matched |= token.ct_eq(accepted.as_bytes());
        }
        if bool::from(matched) {
            Ok(())
        } else {
            Err(AuthError::BadToken)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> WebhookSecret {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".parse().unwrap()
    }

    #[test]
    fn secrets_need_the_prefix_and_base64() {
        assert_eq!(
            "MfKQ9r8G".parse::<WebhookSecret>().unwrap_err(),
            SecretError::MissingPrefix
        );
        assert_eq!(
            "whsec_!!".parse::<WebhookSecret>().unwrap_err(),
            SecretError::NotBase64
        );
        assert_eq!(
            "whsec_".parse::<WebhookSecret>().unwrap_err(),
            SecretError::Empty
        );
        assert_eq!(format!("{:?}", secret()), "WebhookSecret(<redacted>)");
    }

    #[test]
    fn signing_and_verifying_round_trip() {
        let body = br#"{"a":1}"#;
        let header = secret().signature_header("msg_1", "1700000000", body);
        let verifier = SignatureVerifier::new(vec![secret()]);
        let headers = SignedHeaders {
            id: Some("msg_1"),
            timestamp: Some("1700000000"),
            signature: Some(&header),
        };
        let now = Timestamp::from_second(1_700_000_100).unwrap();
        let verified = verifier.verify(headers, body, now).unwrap();
        assert_eq!(verified.id, "msg_1");
        assert_eq!(verified.sent_at.as_second(), 1_700_000_000);
        // A tighter tolerance turns the same message stale.
        let strict = verifier.with_tolerance(SignedDuration::from_secs(60));
        assert_eq!(
            strict.verify(headers, body, now).unwrap_err(),
            AuthError::Stale {
                age_secs: 100,
                tolerance_secs: 60
            }
        );
    }

    #[test]
    fn missing_headers_and_bad_timestamps_are_named() {
        let verifier = SignatureVerifier::new(vec![secret()]);
        let now = Timestamp::from_second(0).unwrap();
        let full = SignedHeaders {
            id: Some("m"),
            timestamp: Some("0"),
            signature: Some("v1,AAAA"),
        };
        let cases = [
            (
                SignedHeaders { id: None, ..full },
                AuthError::MissingHeader(HEADER_ID),
            ),
            (
                SignedHeaders {
                    timestamp: None,
                    ..full
                },
                AuthError::MissingHeader(HEADER_TIMESTAMP),
            ),
            (
                SignedHeaders {
                    signature: None,
                    ..full
                },
                AuthError::MissingHeader(HEADER_SIGNATURE),
            ),
            (
                SignedHeaders {
                    timestamp: Some("soon"),
                    ..full
                },
                AuthError::BadTimestamp("soon".into()),
            ),
            (
                SignedHeaders {
                    signature: Some("v1a"),
                    ..full
                },
                AuthError::UnknownVersion("v1a".into()),
            ),
            (
                SignedHeaders {
                    signature: Some("v1,not-base64!"),
                    ..full
                },
                AuthError::NoMatchingSignature,
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(verifier.verify(headers, b"{}", now).unwrap_err(), expected);
        }
    }

    #[test]
    fn bearer_tokens_are_checked_with_rotation() {
        let verifier = BearerVerifier::new(vec!["old-token".into(), "new-token".into()]);
        assert_eq!(verifier.verify(Some("Bearer new-token")), Ok(()));
        assert_eq!(verifier.verify(Some("bearer old-token")), Ok(()));
        assert_eq!(
            verifier.verify(Some("Bearer new-tokem")),
            Err(AuthError::BadToken)
        );
        assert_eq!(
            verifier.verify(Some("Basic abc")),
            Err(AuthError::NotBearer)
        );
        assert_eq!(verifier.verify(Some("token")), Err(AuthError::NotBearer));
        assert_eq!(
            verifier.verify(None),
            Err(AuthError::MissingHeader("authorization"))
        );
        assert!(!format!("{verifier:?}").contains("new-token"));
    }
}
