//! Group robots: a message in the duty room's chat, mentioning the person
//! by mobile number where the platform allows it.
//!
//! * WeCom (企业微信) group robot: `POST {url}` (`…/webhook/send?key=…`),
//!   `{"msgtype":"text","text":{"content","mentioned_mobile_list"}}`;
//!   `errcode` 0 = sent, 45009 = over its 20 messages a minute.
//! * DingTalk (钉钉) robot with 加签: `POST {url}&timestamp=…&sign=…`
//!   ([`super::sign::dingtalk`]), `{"msgtype":"text","text":{"content"},
//!   "at":{"atMobiles":[…]}}`; `errcode` 0 = sent, 130101 = too fast (20 a
//!   minute), 310000 = sign, keyword or IP refused.
//! * Feishu (飞书) bot with 签名校验: `POST {url}`, `{"timestamp","sign",
//!   "msg_type":"text","content":{"text"}}` ([`super::sign::feishu`]);
//!   `code` 0 = sent, 9499 = too many requests, 19021 = sign refused.
//!   Feishu's custom bots cannot mention by phone number: the person's
//!   name heads the text instead.
//!
//! The URLs carry the robot's key, so they are secrets
//! (`[[notify.robots]] url = "env:…"`).

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::channel::{self, Channel, Failure, Message, Sent};
use super::sign;
use crate::config::ConfigError;
use crate::policy::ChannelKind;
use crate::secret::Secret;

/// `[[notify.robots]]`: a group robot people can be reached through
/// (`channels = ["wecom:<name>"]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotConfig {
    /// The name people's `channels` use (`wecom:<name>`).
    pub name: String,
    /// `wecom`, `dingtalk` or `feishu`.
    pub kind: String,
    /// The robot's webhook URL, with its key or access token: `env:NAME`,
    /// `file:PATH` or the URL itself.
    pub url: Secret,
    /// The signing secret (DingTalk 加签, Feishu 签名校验), as a secret.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Messages a minute the platform allows (WeCom and DingTalk 20,
    /// Feishu 100); over it the message waits.
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// Timeout per request, ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_per_minute() -> u32 {
    20
}

fn default_timeout() -> u64 {
    5_000
}

impl RobotConfig {
    /// The kind.
    pub fn channel_kind(&self) -> Option<ChannelKind> {
        ChannelKind::parse(&self.kind).filter(|k| k.is_robot())
    }

    /// Checks the values; errors name the key under `key`.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !anquan_protocol::Id::is_valid(&self.name) {
            return Err(ConfigError::new(
                format!("{key}.name"),
                "must match [A-Za-z0-9_-]{1,64}",
            ));
        }
        let Some(kind) = self.channel_kind() else {
            return Err(ConfigError::new(
                format!("{key}.kind"),
                "must be wecom, dingtalk or feishu",
            ));
        };
        let u = self.url.expose();
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(ConfigError::new(
                format!("{key}.url"),
                "must be the robot's http(s) webhook URL",
            ));
        }
        if kind != ChannelKind::Wecom && self.secret.as_ref().is_none_or(|s| s.is_empty()) {
            return Err(ConfigError::new(
                format!("{key}.secret"),
                "give the robot's signing secret (加签 / 签名校验): unsigned robots accept anyone's messages",
            ));
        }
        if self.per_minute == 0 || self.timeout_ms == 0 {
            return Err(ConfigError::new(
                format!("{key}.per_minute"),
                "per_minute and timeout_ms must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A group robot.
#[derive(Debug)]
pub struct Robot {
    http: reqwest::Client,
    kind: ChannelKind,
    url: Secret,
    secret: Option<Secret>,
}

impl Robot {
    /// A client for a validated configuration.
    pub fn new(cfg: &RobotConfig) -> Self {
        Self {
            http: channel::http(cfg.timeout_ms),
            kind: cfg.channel_kind().unwrap_or(ChannelKind::Wecom),
            url: cfg.url.clone(),
            secret: cfg.secret.clone(),
        }
    }
}

/// Classifies a robot's answer code.
pub fn classify(kind: ChannelKind, code: i64, msg: &str) -> Option<Failure> {
    let reason = format!("{}: {code} {msg}", kind.as_str());
    match (kind, code) {
        (_, 0) => None,
        (ChannelKind::Wecom, 45009)
        | (ChannelKind::Dingtalk, 130101)
        | (ChannelKind::Feishu, 9499) => Some(Failure::Throttled {
            reason,
            after_ms: 60_000,
        }),
        (ChannelKind::Wecom, -1) | (ChannelKind::Dingtalk, -1) => Some(Failure::Retry {
            reason,
            after_ms: None,
        }),
        // Bad key or token, signature, keyword or IP, message format: the
        // configuration must change.
        (ChannelKind::Wecom, 93000 | 40008 | 40058 | 44004 | 93004)
        | (ChannelKind::Dingtalk, 300001 | 310000 | 400013 | 400101 | 400102 | 430101 | 430102)
        | (ChannelKind::Feishu, 19001 | 19002 | 19021 | 19022 | 19024 | 9400) => {
            Some(Failure::Permanent { reason })
        }
        _ => Some(Failure::Retry {
            reason,
            after_ms: None,
        }),
    }
}

impl Channel for Robot {
    fn kind(&self) -> ChannelKind {
        self.kind
    }

    fn send<'a>(&'a self, m: &'a Message<'a>) -> BoxFuture<'a, Result<Sent, Failure>> {
        Box::pin(async move {
            let what = self.kind.as_str();
            let mention = m.params["_mention"].as_str().filter(|p| !p.is_empty());
            let text = format!("{}\n{}", m.title, m.body);
            let (url, body) = match self.kind {
                ChannelKind::Dingtalk => {
                    let ts = channel::wall_ms();
                    let s = sign::dingtalk(self.secret.as_ref().map_or("", |s| s.expose()), ts);
                    let sep = if self.url.expose().contains('?') {
                        '&'
                    } else {
                        '?'
                    };
                    let url = format!(
                        "{}{sep}timestamp={ts}&sign={}",
                        self.url.expose(),
                        sign::aliyun_encode(&s)
                    );
                    let content = match mention {
                        Some(p) => format!("{text}\n@{p}"),
                        None => text,
                    };
                    (
                        url,
                        json!({"msgtype": "text", "text": {"content": content},
                               "at": {"atMobiles": mention.into_iter().collect::<Vec<_>>(), "isAtAll": false}}),
                    )
                }
                ChannelKind::Feishu => {
                    let ts = channel::wall_ms() / 1000;
                    let s = sign::feishu(self.secret.as_ref().map_or("", |s| s.expose()), ts);
                    (
                        self.url.expose().to_string(),
                        json!({"timestamp": ts.to_string(), "sign": s, "msg_type": "text",
                               "content": {"text": text}}),
                    )
                }
                _ => (
                    self.url.expose().to_string(),
                    json!({"msgtype": "text", "text": {"content": text,
                           "mentioned_mobile_list": mention.into_iter().collect::<Vec<_>>()}}),
                ),
            };
            let r = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| Failure::transport(what, &e))?;
            let (status, v) = channel::json_answer(what, r).await?;
            let code = v
                .get("errcode")
                .or_else(|| v.get("code"))
                .or_else(|| v.get("StatusCode"))
                .and_then(Value::as_i64);
            let Some(code) = code else {
                return Err(Failure::from_status(what, status, None));
            };
            let msg = v
                .get("errmsg")
                .or_else(|| v.get("msg"))
                .and_then(Value::as_str)
                .unwrap_or("");
            match classify(self.kind, code, msg) {
                None => Ok(Sent::default()),
                Some(f) => Err(f),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn codes_classify() {
        assert_eq!(classify(ChannelKind::Wecom, 0, "ok"), None);
        assert!(matches!(
            classify(ChannelKind::Wecom, 45009, ""),
            Some(Failure::Throttled { .. })
        ));
        assert!(matches!(
            classify(ChannelKind::Dingtalk, 310000, ""),
            Some(Failure::Permanent { .. })
        ));
        assert!(matches!(
            classify(ChannelKind::Feishu, 19021, ""),
            Some(Failure::Permanent { .. })
        ));
        assert!(matches!(
            classify(ChannelKind::Feishu, 12345, ""),
            Some(Failure::Retry { .. })
        ));
    }

    #[test]
    fn config_errors_name_the_key() {
        let ok = RobotConfig {
            name: "duty".into(),
            kind: "dingtalk".into(),
            url: "https://oapi.dingtalk.com/robot/send?access_token=x".into(),
            secret: Some("SECx".into()),
            per_minute: 20,
            timeout_ms: 5000,
        };
        assert!(ok.validate("notify.robots[0]").is_ok());
        let e = RobotConfig {
            secret: None,
            ..ok.clone()
        }
        .validate("notify.robots[0]")
        .unwrap_err();
        assert_eq!(e.key, "notify.robots[0].secret");
        let e = RobotConfig {
            kind: "qq".into(),
            ..ok.clone()
        }
        .validate("notify.robots[0]")
        .unwrap_err();
        assert_eq!(e.key, "notify.robots[0].kind");
    }
}
