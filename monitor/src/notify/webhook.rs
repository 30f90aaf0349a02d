//! The monitor's own webhook (an SMS or IM gateway of the deployment's, or
//! any receiver): `POST` JSON `{delivery_id, subject, subject_id,
//! person_id, purpose, title, body}` with `X-Anquan-Signature:
//! sha256=<hex HMAC-SHA256(notify.webhook.secret, body)>` and
//! `X-Anquan-Delivery: <id>` for the receiver's dedupe; 2xx = sent.

use futures_util::future::BoxFuture;
use serde::Serialize;

use super::channel::{self, Channel, Failure, Message, Sent};
use super::sign;
use crate::policy::ChannelKind;

/// The webhook body.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// Delivery id (dedupe key for the receiver).
    pub delivery_id: &'a str,
    /// `warning`, `task`, `hazard`.
    pub subject: &'a str,
    /// Its id.
    pub subject_id: &'a str,
    /// The recipient.
    pub person_id: &'a str,
    /// `call`, `inform`, …, `reminder`, `escalation`.
    pub purpose: &'a str,
    /// Title.
    pub title: &'a str,
    /// Text.
    pub body: &'a str,
}

/// The webhook channel (the URL is the person's `webhook`).
#[derive(Debug)]
pub struct Webhook {
    http: reqwest::Client,
    secret: Vec<u8>,
}

impl Webhook {
    /// A client signing with `secret`.
    pub fn new(secret: &[u8], timeout_ms: u64) -> Self {
        Self {
            http: channel::http(timeout_ms),
            secret: secret.to_vec(),
        }
    }
}

impl Channel for Webhook {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }

    fn send<'a>(&'a self, m: &'a Message<'a>) -> BoxFuture<'a, Result<Sent, Failure>> {
        Box::pin(async move {
            let url = m.target;
            let body = serde_json::to_vec(&WebhookBody {
                delivery_id: m.delivery_id,
                subject: m.subject,
                subject_id: m.subject_id,
                person_id: m.person_id,
                purpose: m.purpose,
                title: m.title,
                body: m.body,
            })
            .map_err(|e| Failure::Permanent {
                reason: e.to_string(),
            })?;
            let r = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("x-anquan-signature", sign::webhook(&self.secret, &body))
                .header("x-anquan-delivery", m.delivery_id)
                .body(body)
                .send()
                .await
                .map_err(|e| Failure::transport(url, &e))?;
            if r.status().is_success() {
                Ok(Sent::default())
            } else {
                Err(Failure::from_status(
                    url,
                    r.status().as_u16(),
                    channel::retry_after(&r),
                ))
            }
        })
    }
}
