//! Alibaba Cloud SMS (`dysmsapi` SendSms) and voice notification
//! (`dyvmsapi` SingleCallByTts), RPC style, version 2017-05-25: the
//! parameters form-encoded in a POST body, signed with HMAC-SHA1
//! ([`super::sign::aliyun_signature`]). The SMS text and the voice script
//! are the provider's registered templates; the message's variables go in
//! `TemplateParam` / `TtsParam` (JSON).
//!
//! The real APIs are not reachable from the build machines: tests run
//! against [`super::standin`], which checks the request shape and the
//! signature as documented.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::channel::{self, Channel, Failure, Message, Sent};
use super::sign;
use crate::policy::ChannelKind;
use crate::secret::Secret;

/// The API version of both products.
pub const VERSION: &str = "2017-05-25";

/// An Alibaba Cloud answer's `Code` → what to do. `OK` is not a failure.
/// Codes from the SendSms / SingleCallByTts error pages; an unknown code
/// is retried (an alarm is not dropped on a code we do not know), within
/// the attempts allowed.
pub fn classify(code: &str, message: &str) -> Option<Failure> {
    let reason = format!("{code}: {message}");
    match code {
        "OK" => None,
        // Flow control per number (1/min, 5/h, 10/day by default) and per
        // account.
        "isv.BUSINESS_LIMIT_CONTROL" | "Throttling.User" | "Throttling" | "Throttling.Api" => {
            Some(Failure::Throttled {
                reason,
                after_ms: 60_000,
            })
        }
        "isv.DAY_LIMIT_CONTROL" => Some(Failure::Throttled {
            reason,
            after_ms: 3_600_000,
        }),
        // The account: someone can fix it; keep trying, slowly.
        "isv.AMOUNT_NOT_ENOUGH" | "isv.OUT_OF_SERVICE" | "isv.ACCOUNT_ABNORMAL" => {
            Some(Failure::Retry {
                reason,
                after_ms: Some(600_000),
            })
        }
        // The request: it will never work as it is.
        "isv.MOBILE_NUMBER_ILLEGAL"
        | "isv.MOBILE_COUNT_OVER_LIMIT"
        | "isv.INVALID_PARAMETERS"
        | "isv.INVALID_JSON_PARAM"
        | "isv.TEMPLATE_MISSING_PARAMETERS"
        | "isv.PARAM_LENGTH_LIMIT"
        | "isv.PARAM_NOT_SUPPORT_URL"
        | "isv.SMS_TEMPLATE_ILLEGAL"
        | "isv.SMS_SIGNATURE_ILLEGAL"
        | "isv.SMS_SIGN_ILLEGAL"
        | "isv.BLACK_KEY_CONTROL_LIMIT"
        | "isv.DENY_IP_RANGE"
        | "isv.EXTEND_CODE_ERROR"
        | "isv.DOMESTIC_NUMBER_NOT_SUPPORTED"
        | "isv.TTS_TEMPLATE_ILLEGAL"
        | "isv.CALLED_NUMBER_ILLEGAL"
        | "isv.CALLED_SHOW_NUMBER_ILLEGAL"
        | "SignatureDoesNotMatch"
        | "InvalidAccessKeyId.NotFound"
        | "InvalidAccessKeyId.Inactive"
        | "IncompleteSignature"
        | "MissingParameter"
        | "isp.RAM_PERMISSION_DENY"
        | "Forbidden.RAM" => Some(Failure::Permanent { reason }),
        _ => Some(Failure::Retry {
            reason,
            after_ms: None,
        }),
    }
}

/// The common RPC parameters (without `Signature`).
fn common(action: &str, key_id: &str, region: &str) -> Vec<(String, String)> {
    let ts = chrono::DateTime::from_timestamp_millis(channel::wall_ms())
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    [
        ("AccessKeyId", key_id.to_string()),
        ("Action", action.to_string()),
        ("Format", "JSON".into()),
        ("RegionId", region.to_string()),
        ("SignatureMethod", "HMAC-SHA1".into()),
        ("SignatureNonce", uuid::Uuid::new_v4().to_string()),
        ("SignatureVersion", "1.0".into()),
        ("Timestamp", ts),
        ("Version", VERSION.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Posts a signed RPC request; `OK` → the value of `id_field`.
async fn call(
    http: &reqwest::Client,
    what: &str,
    endpoint: &str,
    secret: &str,
    mut params: Vec<(String, String)>,
    id_field: &str,
) -> Result<Sent, Failure> {
    let sig = sign::aliyun_signature("POST", &params, secret);
    params.push(("Signature".into(), sig));
    let body = serde_urlencoded::to_string(&params).map_err(|e| Failure::Permanent {
        reason: format!("{what}: cannot encode the request: {e}"),
    })?;
    let r = http
        .post(endpoint)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| Failure::transport(what, &e))?;
    let (status, v) = channel::json_answer(what, r).await?;
    let code = v["Code"].as_str().unwrap_or("");
    if code.is_empty() {
        return Err(Failure::from_status(what, status, None));
    }
    match classify(code, v["Message"].as_str().unwrap_or("")) {
        None => Ok(Sent {
            provider_id: v[id_field].as_str().map(str::to_string),
        }),
        Some(f) => Err(match f {
            Failure::Retry { reason, after_ms } => Failure::Retry {
                reason: format!("{what}: {reason}"),
                after_ms,
            },
            Failure::Throttled { reason, after_ms } => Failure::Throttled {
                reason: format!("{what}: {reason}"),
                after_ms,
            },
            Failure::Permanent { reason } => Failure::Permanent {
                reason: format!("{what}: {reason}"),
            },
        }),
    }
}

/// Variables as a JSON object of strings (both APIs want strings).
fn vars(params: &Value) -> String {
    let obj: serde_json::Map<String, Value> = params
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k.clone(), Value::String(s))
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Object(obj).to_string()
}

/// The credentials and endpoint of an Alibaba Cloud product.
#[derive(Debug, Clone)]
pub struct Account {
    /// `https://dysmsapi.aliyuncs.com/` (or a stand-in).
    pub endpoint: String,
    /// AccessKeyId.
    pub key_id: String,
    /// AccessKeySecret.
    pub secret: Secret,
    /// RegionId (`cn-hangzhou`).
    pub region: String,
}

/// Alibaba Cloud SMS.
#[derive(Debug)]
pub struct Sms {
    http: reqwest::Client,
    account: Account,
    sign_name: String,
    templates: BTreeMap<String, String>,
}

impl Sms {
    /// A client.
    pub fn new(
        account: Account,
        sign_name: String,
        templates: BTreeMap<String, String>,
        timeout_ms: u64,
    ) -> Self {
        Self {
            http: channel::http(timeout_ms),
            account,
            sign_name,
            templates,
        }
    }
}

impl Channel for Sms {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sms
    }

    fn send<'a>(&'a self, m: &'a Message<'a>) -> BoxFuture<'a, Result<Sent, Failure>> {
        Box::pin(async move {
            let Some(tpl) = self.templates.get(m.template) else {
                return Err(Failure::Permanent {
                    reason: format!(
                        "aliyun sms: no template for {:?} (notify.sms.templates.{})",
                        m.template, m.template
                    ),
                });
            };
            let mut p = common("SendSms", &self.account.key_id, &self.account.region);
            p.extend([
                ("PhoneNumbers".to_string(), m.target.to_string()),
                ("SignName".to_string(), self.sign_name.clone()),
                ("TemplateCode".to_string(), tpl.clone()),
                ("TemplateParam".to_string(), vars(m.params)),
                ("OutId".to_string(), m.out_id.to_string()),
            ]);
            call(
                &self.http,
                "aliyun sms",
                &self.account.endpoint,
                self.account.secret.expose(),
                p,
                "BizId",
            )
            .await
        })
    }
}

/// Alibaba Cloud voice notification (text to speech).
#[derive(Debug)]
pub struct Voice {
    http: reqwest::Client,
    account: Account,
    show_number: Option<String>,
    templates: BTreeMap<String, String>,
    play_times: u8,
}

impl Voice {
    /// A client.
    pub fn new(
        account: Account,
        show_number: Option<String>,
        templates: BTreeMap<String, String>,
        play_times: u8,
        timeout_ms: u64,
    ) -> Self {
        Self {
            http: channel::http(timeout_ms),
            account,
            show_number,
            templates,
            play_times,
        }
    }
}

impl Channel for Voice {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Voice
    }

    fn send<'a>(&'a self, m: &'a Message<'a>) -> BoxFuture<'a, Result<Sent, Failure>> {
        Box::pin(async move {
            let Some(tpl) = self.templates.get(m.template) else {
                return Err(Failure::Permanent {
                    reason: format!(
                        "aliyun voice: no TTS template for {:?} (notify.voice.templates.{})",
                        m.template, m.template
                    ),
                });
            };
            let mut p = common(
                "SingleCallByTts",
                &self.account.key_id,
                &self.account.region,
            );
            if let Some(n) = &self.show_number {
                p.push(("CalledShowNumber".into(), n.clone()));
            }
            p.extend([
                ("CalledNumber".to_string(), m.target.to_string()),
                ("TtsCode".to_string(), tpl.clone()),
                ("TtsParam".to_string(), vars(m.params)),
                ("PlayTimes".to_string(), self.play_times.to_string()),
                ("OutId".to_string(), m.out_id.to_string()),
            ]);
            call(
                &self.http,
                "aliyun voice",
                &self.account.endpoint,
                self.account.secret.expose(),
                p,
                "CallId",
            )
            .await
        })
    }
}

/// One SMS delivery report of the HTTP batch push (`SmsReport`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsReport {
    /// The number.
    pub phone_number: String,
    /// Delivered to the handset.
    pub success: bool,
    /// `DELIVERED` or the carrier's error code.
    #[serde(default)]
    pub err_code: String,
    /// Its description.
    #[serde(default)]
    pub err_msg: String,
    /// The SendSms answer's BizId.
    #[serde(default)]
    pub biz_id: String,
    /// Our `OutId`.
    #[serde(default)]
    pub out_id: String,
    /// When the carrier reported it.
    #[serde(default)]
    pub report_time: String,
}

/// One SMS reply of the HTTP batch push (`SmsUp`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsUp {
    /// The sender's number.
    pub phone_number: String,
    /// What they wrote.
    pub content: String,
    /// When.
    #[serde(default)]
    pub send_time: String,
    /// The sign the reply went to.
    #[serde(default)]
    pub sign_name: String,
}

/// One voice call report (`VoiceReport`): how the call ended and the keys
/// pressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceReport {
    /// The SingleCallByTts answer's CallId.
    #[serde(default)]
    pub call_id: String,
    /// `200000`: heard to the end; other codes: not answered, busy, …
    #[serde(default)]
    pub status_code: String,
    /// Its description.
    #[serde(default)]
    pub status_msg: String,
    /// Keys pressed (DTMF).
    #[serde(default)]
    pub dtmf: String,
    /// Our `OutId`.
    #[serde(default)]
    pub out_id: String,
}

/// The answer the batch push expects.
pub fn push_ok() -> Value {
    serde_json::json!({"code": 0, "msg": "成功"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify() {
        assert_eq!(classify("OK", "OK"), None);
        assert!(matches!(
            classify("isv.BUSINESS_LIMIT_CONTROL", "x"),
            Some(Failure::Throttled { .. })
        ));
        assert!(matches!(
            classify("isv.MOBILE_NUMBER_ILLEGAL", "x"),
            Some(Failure::Permanent { .. })
        ));
        assert!(matches!(
            classify("SignatureDoesNotMatch", "x"),
            Some(Failure::Permanent { .. })
        ));
        assert!(matches!(
            classify("isp.SYSTEM_ERROR", "x"),
            Some(Failure::Retry { .. })
        ));
        assert!(matches!(
            classify("never.SEEN", "x"),
            Some(Failure::Retry { .. })
        ));
    }

    #[test]
    fn variables_are_strings() {
        let v = serde_json::json!({"value": "55", "step": 2, "none": null, "_mention": "x"});
        let s: Value = serde_json::from_str(&vars(&v)).unwrap_or_default();
        assert!(s.is_object());
        assert_eq!(
            s,
            serde_json::json!({"value": "55", "step": "2", "none": ""})
        );
    }
}
