//! Tencent Cloud SMS (API 3.0, `SendSms`, version 2021-01-11): a JSON
//! POST signed with TC3-HMAC-SHA256 ([`super::sign::tc3`]). The text is
//! the registered template; the variables go in `TemplateParamSet` in the
//! catalogue's `params` order (`{1}`, `{2}`, …).
//!
//! The real API is not reachable from the build machines: tests run
//! against [`super::standin`], which checks the request shape and the
//! signature as documented.

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::channel::{self, Channel, Failure, Message, Sent};
use super::sign;
use crate::policy::ChannelKind;
use crate::secret::Secret;

/// The API version.
pub const VERSION: &str = "2021-01-11";
/// The content type, exactly as signed.
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A Tencent Cloud error or per-number status `Code` → what to do (`Ok`
/// is not a failure). From the SendSms error-code page; unknown codes are
/// retried within the attempts allowed.
pub fn classify(code: &str, message: &str) -> Option<Failure> {
    let reason = format!("{code}: {message}");
    if code == "Ok" {
        return None;
    }
    let throttled = |after_ms| {
        Some(Failure::Throttled {
            reason: reason.clone(),
            after_ms,
        })
    };
    match code {
        "LimitExceeded.PhoneNumberThirtySecondLimit" => throttled(30_000),
        "LimitExceeded.PhoneNumberOneHourLimit" => throttled(3_600_000),
        "LimitExceeded.PhoneNumberDailyLimit" | "LimitExceeded.DailyLimit" => throttled(3_600_000),
        "LimitExceeded.PhoneNumberSameContentDailyLimit" => throttled(3_600_000),
        "RequestLimitExceeded" | "LimitExceeded.AppDailyLimit" => throttled(60_000),
        "FailedOperation.InsufficientBalanceInSmsPackage"
        | "FailedOperation.ContainSensitiveWord" => Some(Failure::Retry {
            reason,
            after_ms: Some(600_000),
        }),
        c if c.starts_with("AuthFailure")
            || c.starts_with("InvalidParameter")
            || c.starts_with("UnauthorizedOperation")
            || c.starts_with("UnsupportedOperation")
            || c.starts_with("MissingParameter")
            || c == "FailedOperation.TemplateIncorrectOrUnapproved"
            || c == "FailedOperation.SignatureIncorrectOrUnapproved"
            || c == "FailedOperation.PhoneNumberInBlacklist" =>
        {
            Some(Failure::Permanent { reason })
        }
        _ => Some(Failure::Retry {
            reason,
            after_ms: None,
        }),
    }
}

/// The phone number in E.164 (`+86…`): Tencent wants the country code.
pub fn e164(phone: &str) -> String {
    if phone.starts_with('+') {
        phone.to_string()
    } else {
        format!("+86{phone}")
    }
}

/// Tencent Cloud SMS.
#[derive(Debug)]
pub struct Sms {
    http: reqwest::Client,
    endpoint: String,
    host: String,
    secret_id: String,
    secret_key: Secret,
    app_id: String,
    sign_name: String,
    region: String,
    templates: BTreeMap<String, String>,
}

impl Sms {
    /// A client.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        endpoint: String,
        secret_id: String,
        secret_key: Secret,
        app_id: String,
        sign_name: String,
        region: String,
        templates: BTreeMap<String, String>,
        timeout_ms: u64,
    ) -> Self {
        let host = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |(_, r)| r)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        Self {
            http: channel::http(timeout_ms),
            endpoint,
            host,
            secret_id,
            secret_key,
            app_id,
            sign_name,
            region,
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
            const WHAT: &str = "tencent sms";
            let Some(tpl) = self.templates.get(m.template) else {
                return Err(Failure::Permanent {
                    reason: format!(
                        "{WHAT}: no template for {:?} (notify.sms.templates.{})",
                        m.template, m.template
                    ),
                });
            };
            // `{1}`, `{2}`, …: the catalogue's order of the variables.
            let set: Vec<String> = crate::messages::param_order(m.template)
                .unwrap_or_default()
                .iter()
                .map(|k| match &m.params[k.as_str()] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .collect();
            let body = json!({
                "PhoneNumberSet": [e164(m.target)],
                "SmsSdkAppId": self.app_id,
                "SignName": self.sign_name,
                "TemplateId": tpl,
                "TemplateParamSet": set,
                "SessionContext": m.out_id,
            })
            .to_string();
            let ts = channel::wall_ms() / 1000;
            let auth = sign::tc3_authorization(
                &sign::Tc3 {
                    service: "sms",
                    host: &self.host,
                    content_type: CONTENT_TYPE,
                    payload: body.as_bytes(),
                    timestamp: ts,
                },
                &self.secret_id,
                self.secret_key.expose(),
            );
            let r = self
                .http
                .post(&self.endpoint)
                .header("authorization", auth)
                .header("content-type", CONTENT_TYPE)
                .header("host", &self.host)
                .header("x-tc-action", "SendSms")
                .header("x-tc-timestamp", ts.to_string())
                .header("x-tc-version", VERSION)
                .header("x-tc-region", &self.region)
                .body(body)
                .send()
                .await
                .map_err(|e| Failure::transport(WHAT, &e))?;
            let (status, v) = channel::json_answer(WHAT, r).await?;
            let resp = &v["Response"];
            if let Some(code) = resp["Error"]["Code"].as_str() {
                return Err(
                    classify(code, resp["Error"]["Message"].as_str().unwrap_or("")).unwrap_or(
                        Failure::Retry {
                            reason: format!("{WHAT}: {code}"),
                            after_ms: None,
                        },
                    ),
                );
            }
            let Some(s) = resp["SendStatusSet"].get(0) else {
                return Err(Failure::from_status(WHAT, status, None));
            };
            match classify(
                s["Code"].as_str().unwrap_or(""),
                s["Message"].as_str().unwrap_or(""),
            ) {
                None => Ok(Sent {
                    provider_id: s["SerialNo"].as_str().map(str::to_string),
                }),
                Some(f) => Err(f),
            }
        })
    }
}

/// One status report of the status callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The number, without the country code.
    pub mobile: String,
    /// `SUCCESS` or `FAIL`.
    pub report_status: String,
    /// The carrier's code (`DELIVRD`, …).
    #[serde(default)]
    pub errmsg: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// The SendSms answer's SerialNo.
    #[serde(default)]
    pub sid: String,
    /// When the handset got it.
    #[serde(default)]
    pub user_receive_time: String,
}

/// One SMS reply of the reply callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The number, without the country code.
    pub mobile: String,
    /// Its country code (`86`).
    #[serde(default)]
    pub nationcode: String,
    /// What they wrote.
    pub text: String,
    /// When (Unix s).
    #[serde(default)]
    pub time: i64,
}

/// The answer the callbacks expect.
pub fn callback_ok() -> Value {
    json!({"result": 0, "errmsg": "OK"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_classify() {
        assert_eq!(classify("Ok", "send success"), None);
        assert!(matches!(
            classify("LimitExceeded.PhoneNumberThirtySecondLimit", ""),
            Some(Failure::Throttled {
                after_ms: 30_000,
                ..
            })
        ));
        assert!(matches!(
            classify("AuthFailure.SignatureFailure", ""),
            Some(Failure::Permanent { .. })
        ));
        assert!(matches!(
            classify("InvalidParameterValue.IncorrectPhoneNumber", ""),
            Some(Failure::Permanent { .. })
        ));
        assert!(matches!(
            classify("InternalError.Timeout", ""),
            Some(Failure::Retry { .. })
        ));
        assert_eq!(e164("13800000001"), "+8613800000001");
        assert_eq!(e164("+85290000000"), "+85290000000");
    }
}
