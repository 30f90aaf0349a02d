//! What the providers post back (`POST /callbacks/{provider}/{kind}/{token}`,
//! the URLs configured in their consoles): SMS delivery reports and voice
//! call reports become receipts on the messages they name
//! ([`crate::notify::receipt`]), routed to the warnings like any delivery
//! outcome; SMS replies and the key pressed during a voice call acknowledge
//! with the grant they name ([`crate::ack`]). The path token
//! (`notify.callbacks.token`) is what authenticates a callback: the
//! providers do not sign them.
//!
//! | provider | kind | body | answer |
//! |---|---|---|---|
//! | `aliyun-sms` | `report` | JSON array of `SmsReport` | `{"code":0,"msg":"成功"}` |
//! | `aliyun-sms` | `reply` | JSON array of `SmsUp` | same |
//! | `aliyun-voice` | `report` | JSON array of `VoiceReport` (`dtmf` `1` acknowledges) | same |
//! | `tencent-sms` | `report` | JSON array of status reports | `{"result":0,"errmsg":"OK"}` |
//! | `tencent-sms` | `reply` | one reply object | same |

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::App;
use crate::ack::{self, Refusal};
use crate::error::{Error, Result};
use crate::notify::{aliyun, tencent};
use crate::warnings::{self, GrantUse, Via};

/// The provider's name in the path.
pub const PROVIDERS: [&str; 3] = ["aliyun-sms", "aliyun-voice", "tencent-sms"];

/// What a callback did: receipts recorded, acknowledgements made, refusals.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Handled {
    /// Receipts matched to a message.
    pub receipts: usize,
    /// Warnings acknowledged.
    pub acks: usize,
    /// Replies or keys refused (counted, audited).
    pub refused: usize,
}

/// Checks the path token.
pub fn authorize(app: &App, token: &str) -> Result<()> {
    let Some(t) = app.cfg.notify.callbacks.token.as_ref() else {
        return Err(Error::NotFound {
            what: "callback",
            id: "(notify.callbacks.token is not set)".into(),
        });
    };
    if crate::gatekeeper::ct_eq(t.expose().as_bytes(), token.as_bytes()) {
        Ok(())
    } else {
        Err(Error::Unauthorized("unknown callback token"))
    }
}

fn list<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<T>> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("the callback is not JSON: {e}")))?;
    let items = match v {
        Value::Array(a) => a,
        one => vec![one],
    };
    items
        .into_iter()
        .map(|i| {
            serde_json::from_value(i).map_err(|e| Error::Invalid(format!("a callback item: {e}")))
        })
        .collect()
}

/// The answer the provider expects.
pub fn answer(provider: &str) -> Value {
    if provider.starts_with("tencent") {
        tencent::callback_ok()
    } else {
        aliyun::push_ok()
    }
}

/// Handles one callback (the token already checked).
pub async fn handle(app: &App, provider: &str, kind: &str, body: &[u8]) -> Result<Handled> {
    let mut h = Handled::default();
    match (provider, kind) {
        ("aliyun-sms", "report") => {
            for r in list::<aliyun::SmsReport>(body)? {
                let text = format!("{} {}", r.err_code, r.err_msg);
                let key = if r.biz_id.is_empty() {
                    &r.out_id
                } else {
                    &r.biz_id
                };
                receipt(app, key, r.success, &text, &mut h).await?;
            }
        }
        ("aliyun-sms", "reply") => {
            for r in list::<aliyun::SmsUp>(body)? {
                reply(app, &r.phone_number, &r.content, Via::Sms, &mut h).await?;
            }
        }
        ("aliyun-voice", "report") => {
            for r in list::<aliyun::VoiceReport>(body)? {
                let answered = r.status_code == "200000" || r.status_code == "200100";
                let text = format!("{} {} dtmf={}", r.status_code, r.status_msg, r.dtmf);
                let key = if r.call_id.is_empty() {
                    &r.out_id
                } else {
                    &r.call_id
                };
                receipt(app, key, answered, &text, &mut h).await?;
                if r.dtmf.trim_start().starts_with('1') {
                    voice_key(app, key, &mut h).await?;
                }
            }
        }
        ("tencent-sms", "report") => {
            for r in list::<tencent::StatusReport>(body)? {
                let text = format!("{} {} {}", r.report_status, r.errmsg, r.description);
                receipt(app, &r.sid, r.report_status == "SUCCESS", &text, &mut h).await?;
            }
        }
        ("tencent-sms", "reply") => {
            for r in list::<tencent::Reply>(body)? {
                let phone = if r.nationcode.is_empty() || r.nationcode == "86" {
                    r.mobile.clone()
                } else {
                    format!("+{}{}", r.nationcode, r.mobile)
                };
                reply(app, &phone, &r.text, Via::Sms, &mut h).await?;
            }
        }
        _ => {
            return Err(Error::NotFound {
                what: "callback",
                id: format!("{provider}/{kind}"),
            });
        }
    }
    Ok(h)
}

async fn receipt(app: &App, key: &str, ok: bool, text: &str, h: &mut Handled) -> Result<()> {
    if let Some(o) = crate::notify::receipt(app, key, ok, text).await? {
        h.receipts += 1;
        warnings::on_deliveries(app, &[o]).await?;
    } else {
        tracing::info!(%key, "callback: a receipt for no message we sent");
    }
    Ok(())
}

async fn used(app: &App, g: &ack::Grant, via: Via, what: &str, h: &mut Handled) -> Result<()> {
    match warnings::ack_with_grant(app, g, via).await? {
        Ok(GrantUse::Acked(_)) => h.acks += 1,
        Ok(GrantUse::NotWaiting(w)) => {
            tracing::info!(warning = %w.id, state = w.w.phase.as_str(), "{what}: the warning no longer waits for an answer");
        }
        Err(r) => {
            h.refused += 1;
            ack::refused(app, what, &g.warning_id, &r).await?;
        }
    }
    Ok(())
}

async fn reply(app: &App, phone: &str, text: &str, via: Via, h: &mut Handled) -> Result<()> {
    let now = app.now_ms();
    let found = {
        let mut c = app.db.acquire().await?;
        ack::check_code(&mut c, phone, text, now).await?
    };
    let what = format!("sms reply from {}", crate::notify::phone_key(phone));
    match found {
        Ok(g) => used(app, &g, via, &what, h).await,
        Err(r) => {
            h.refused += 1;
            ack::refused(app, &what, phone, &r).await
        }
    }
}

/// A key pressed during a voice call: the grant of the call's person for
/// the call's warning.
async fn voice_key(app: &App, key: &str, h: &mut Handled) -> Result<()> {
    use sqlx::Row;
    let now = app.now_ms();
    let grant = {
        let mut c = app.db.acquire().await?;
        let Some(d) = sqlx::query(
            "SELECT subject_id, person_id FROM deliveries WHERE (provider_id = $1 OR out_id = $1) AND subject = 'warning' LIMIT 1",
        )
        .bind(key)
        .fetch_optional(&mut *c)
        .await?
        else {
            return Ok(());
        };
        let (w, p): (String, String) = (d.try_get("subject_id")?, d.try_get("person_id")?);
        ack::of_warnings(&mut c, &[w])
            .await?
            .into_iter()
            .filter(|g| g.person_id == p)
            .max_by_key(|g| g.issued_ms)
    };
    let what = "voice key";
    match grant {
        Some(g) if g.usable(now) => used(app, &g, Via::Voice, what, h).await,
        Some(g) => {
            h.refused += 1;
            let r = if g.used_ms.is_some() {
                Refusal::Used(g.used_ms.unwrap_or(now))
            } else {
                Refusal::Expired
            };
            ack::refused(app, what, &g.warning_id, &r).await
        }
        None => Ok(()),
    }
}
