//! One trait for every channel: a message in, the provider's message id
//! or a classified failure out. What to retry, what never to retry and
//! what the provider throttled is decided here, per provider, from its
//! documented error codes; the queue ([`super`]) acts on the class.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::policy::ChannelKind;

/// One delivery to send.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The delivery's id.
    pub delivery_id: &'a str,
    /// A short id the provider echoes in its receipts (Alibaba Cloud's
    /// `OutId`, at most 15 characters; Tencent's `SessionContext`).
    pub out_id: &'a str,
    /// `warning`, `task`, `hazard`, `report`.
    pub subject: &'a str,
    /// Its id.
    pub subject_id: &'a str,
    /// The person.
    pub person_id: &'a str,
    /// `call`, `inform`, …, `reminder`, `escalation`.
    pub purpose: &'a str,
    /// The catalogue entry (`warning.call`, `reminder.overdue`): the key of
    /// the provider template (`[notify.sms.templates]`).
    pub template: &'a str,
    /// The address: a phone number, a URL, an e-mail address, a robot's
    /// name.
    pub target: &'a str,
    /// Title.
    pub title: &'a str,
    /// Text (the SMS text for SMS, the script for voice).
    pub body: &'a str,
    /// Template variables (SMS, voice) and, for robots, `mention` (the
    /// person's phone).
    pub params: &'a Value,
}

/// Sent: the provider took it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id of the message (BizId, SerialNo, CallId): its
    /// receipts name it.
    pub provider_id: Option<String>,
}

/// Why a send failed, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Try again after the backoff (or `after_ms`, when the provider said).
    Retry {
        /// What happened.
        reason: String,
        /// The provider's wish, ms.
        after_ms: Option<i64>,
    },
    /// The provider (or our limit) throttles this address: not counted as
    /// an attempt; try again after `after_ms`.
    Throttled {
        /// What happened.
        reason: String,
        /// When to try again, ms from now.
        after_ms: i64,
    },
    /// It can never work as it is (bad number, credentials, template): the
    /// delivery fails now, without retries.
    Permanent {
        /// What happened.
        reason: String,
    },
}

impl Failure {
    /// The reason.
    pub fn reason(&self) -> &str {
        match self {
            Self::Retry { reason, .. }
            | Self::Throttled { reason, .. }
            | Self::Permanent { reason } => reason,
        }
    }

    /// A transport failure (timeout, refused, reset): retried.
    pub fn transport(what: &str, e: &reqwest::Error) -> Self {
        let reason = if e.is_timeout() {
            format!("{what}: timed out")
        } else {
            format!("{what}: {e}")
        };
        Self::Retry {
            reason,
            after_ms: None,
        }
    }

    /// The class of an HTTP status without a provider code: 429 throttled,
    /// 408 and 5xx retried, other 4xx permanent.
    pub fn from_status(what: &str, status: u16, retry_after_s: Option<i64>) -> Self {
        let reason = format!("{what}: HTTP {status}");
        match status {
            429 => Self::Throttled {
                reason,
                after_ms: retry_after_s.unwrap_or(60).clamp(1, 3_600) * 1_000,
            },
            408 | 500..=599 => Self::Retry {
                reason,
                after_ms: retry_after_s.map(|s| s.clamp(1, 3_600) * 1_000),
            },
            _ => Self::Permanent { reason },
        }
    }
}

/// A channel.
pub trait Channel: Send + Sync + std::fmt::Debug {
    /// Its kind.
    fn kind(&self) -> ChannelKind;
    /// Sends one message.
    fn send<'a>(&'a self, m: &'a Message<'a>) -> BoxFuture<'a, Result<Sent, Failure>>;
}

/// An HTTP client with the channel's timeout (rustls, no OpenSSL).
pub fn http(timeout_ms: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms))
        .use_rustls_tls()
        .build()
        .unwrap_or_default()
}

/// The `Retry-After` seconds of a response, if given.
pub fn retry_after(r: &reqwest::Response) -> Option<i64> {
    r.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Now, Unix ms, by the wall clock: the providers check signature
/// timestamps against theirs, so this is never the service's (possibly
/// simulated) clock.
pub fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Reads a JSON answer; a body that is not JSON is classified by status.
pub async fn json_answer(what: &str, r: reqwest::Response) -> Result<(u16, Value), Failure> {
    let status = r.status().as_u16();
    let ra = retry_after(&r);
    let bytes = r.bytes().await.map_err(|e| Failure::transport(what, &e))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => Ok((status, v)),
        Err(_) => Err(if (200..300).contains(&status) {
            Failure::Retry {
                reason: format!("{what}: HTTP {status} with a body that is not JSON"),
                after_ms: None,
            }
        } else {
            Failure::from_status(what, status, ra)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_classify() {
        assert!(matches!(
            Failure::from_status("x", 429, Some(5)),
            Failure::Throttled {
                after_ms: 5_000,
                ..
            }
        ));
        assert!(matches!(
            Failure::from_status("x", 503, None),
            Failure::Retry { .. }
        ));
        assert!(matches!(
            Failure::from_status("x", 408, None),
            Failure::Retry { .. }
        ));
        assert!(matches!(
            Failure::from_status("x", 404, None),
            Failure::Permanent { .. }
        ));
        assert!(matches!(
            Failure::from_status("x", 400, None),
            Failure::Permanent { .. }
        ));
    }
}
