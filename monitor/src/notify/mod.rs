//! 消息通知: one queue of messages (the `deliveries` table), one row per
//! message, person and channel, written in the same transaction as the
//! state change that caused it (so a message is never lost; its `dedupe`
//! key makes queueing happen once). The worker ([`deliver_tick`]) takes
//! due rows in priority order (red first: the typed [`Priority`] column,
//! never parsed out of a text key), applies the channel's rate limit per
//! address ([`limits`]), claims each with a lease (compare-and-set on
//! `lease_until`), sends it through its [`channel::Channel`] and records
//! the result: sent (with the provider's message id), retried with
//! doubling delays, throttled (waits, not an attempt), or failed. It
//! returns what happened to each message; the scheduler routes those
//! outcomes back to the warnings (a call that reached someone, a step
//! whose calls all failed). Receipts (SMS delivery reports, voice call
//! reports) update the rows they name ([`receipt`]).
//!
//! Channels: Alibaba Cloud SMS and voice ([`aliyun`]), Tencent Cloud SMS
//! ([`tencent`]), WeCom, DingTalk and Feishu group robots ([`robots`]), the
//! signed webhook ([`webhook`]) and e-mail ([`email`]). [`standin`] holds
//! local stand-ins of the providers' APIs (tests, the demo).

pub mod aliyun;
pub mod channel;
pub mod digest;
pub mod email;
pub mod limits;
pub mod robots;
pub mod sign;
pub mod standin;
pub mod tencent;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};

use anquan_protocol::Level;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use crate::App;
use crate::config::{ConfigError, NotifyConfig};
use crate::db;
use crate::error::Result;
use crate::policy::ChannelKind;
use crate::secret::Secret;
use channel::{Channel, Failure, Message, Sent};

/// How soon a message goes, when several wait: red calls first. Stored as
/// an integer (`deliveries.priority`, higher first); this type is the
/// only place the numbers are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(i64);

impl Priority {
    /// Reminders, reports: after every warning message.
    pub const ROUTINE: Self = Self(0);

    /// A warning message at `level`; `asks_answer` (a call) goes before
    /// information at the same level.
    pub fn warning(level: Level, asks_answer: bool) -> Self {
        let base = match level {
            Level::Blue => 10,
            Level::Yellow => 20,
            Level::Orange => 30,
            Level::Red => 40,
        };
        Self(base + if asks_answer { 5 } else { 0 })
    }

    /// The stored value.
    pub fn value(self) -> i64 {
        self.0
    }

    /// A stored value back.
    pub fn from_value(v: i64) -> Self {
        Self(v)
    }

    /// A red warning's message.
    pub fn is_red(self) -> bool {
        self >= Self::warning(Level::Red, false)
    }

    /// A message that asks the person to answer (a call).
    pub fn asks_answer(self) -> bool {
        self.0 > 0 && self.0 % 10 == 5
    }
}

/// A message to queue (one `deliveries` row).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// Makes queueing idempotent (unique).
    pub dedupe: String,
    /// `warning`, `task`, `hazard`.
    pub subject: &'static str,
    /// Its id.
    pub subject_id: String,
    /// The person.
    pub person: String,
    /// The channel.
    pub channel: ChannelKind,
    /// The address.
    pub target: String,
    /// `call`, `inform`, …, `reminder`, `escalation`.
    pub purpose: String,
    /// The catalogue entry (provider template key): `call`, `overdue`, …
    pub template: String,
    /// Title.
    pub title: String,
    /// The text in the channel's form (SMS text, voice script, IM body).
    pub body: String,
    /// Provider template variables; `_mention` for robots.
    pub params: Option<Value>,
    /// Order in the queue.
    pub priority: Priority,
    /// The ladder step of a warning call.
    pub step: Option<i64>,
}

/// A short id the provider echoes in its receipts (Alibaba Cloud's
/// `OutId` allows 15 characters).
pub fn out_id() -> String {
    let u = uuid::Uuid::new_v4().simple().to_string();
    u[..15].to_string()
}

/// `[notify.sms]`: SMS through Alibaba Cloud (`provider = "aliyun"`) or
/// Tencent Cloud (`"tencent"`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// `aliyun` or `tencent`.
    pub provider: String,
    /// The API endpoint; default `https://dysmsapi.aliyuncs.com/` or
    /// `https://sms.tencentcloudapi.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Alibaba Cloud AccessKeyId / Tencent Cloud SecretId.
    pub access_key_id: String,
    /// Alibaba Cloud AccessKeySecret / Tencent Cloud SecretKey: `env:NAME`,
    /// `file:PATH` or the secret itself (`check` warns).
    pub access_key_secret: Secret,
    /// Tencent Cloud's SmsSdkAppId.
    #[serde(default)]
    pub app_id: Option<String>,
    /// The approved signature (签名), e.g. `安全监管`.
    pub sign_name: String,
    /// Alibaba Cloud RegionId (default `cn-hangzhou`) / Tencent Cloud region
    /// (default `ap-guangzhou`).
    #[serde(default)]
    pub region: Option<String>,
    /// The approved template per message (`call`, `inform`, `escalated`,
    /// `no_response`, `acked`, `cleared`, `disposal`, `resolved`, and the
    /// reminders `before`, `due`, `overdue`, `node`, `listing`): its
    /// TemplateCode / TemplateId. A message without one is not sent by SMS
    /// (the person's other channels carry it); `anquan-monitor
    /// sms-templates` prints the texts to register.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// Timeout per request, ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Messages a minute to one number (the providers allow 1 by default).
    #[serde(default = "one")]
    pub per_minute: u32,
    /// Messages an hour to one number (default 5).
    #[serde(default = "five")]
    pub per_hour: u32,
}

/// `[notify.voice]`: voice calls reading the message (Alibaba Cloud VMS,
/// text to speech); the person presses 1 to acknowledge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceConfig {
    /// `aliyun`.
    pub provider: String,
    /// Default `https://dyvmsapi.aliyuncs.com/`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// AccessKeyId.
    pub access_key_id: String,
    /// AccessKeySecret (`env:`, `file:` or the secret).
    pub access_key_secret: Secret,
    /// RegionId (default `cn-hangzhou`).
    #[serde(default)]
    pub region: Option<String>,
    /// The number shown to the called person (专属模式); none: the public
    /// pool (公共模式).
    #[serde(default)]
    pub called_show_number: Option<String>,
    /// The approved TTS template (TtsCode) per message (`call`,
    /// `escalated`, `no_response`, …).
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// How often the message is read out in one call (1–3).
    #[serde(default = "two")]
    pub play_times: u8,
    /// Timeout per request, ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Calls a minute to one number (the provider allows 1).
    #[serde(default = "one")]
    pub per_minute: u32,
    /// Calls an hour to one number (the provider allows 5).
    #[serde(default = "five")]
    pub per_hour: u32,
}

/// `[notify.callbacks]`: where the providers post receipts and replies
/// (`/callbacks/{provider}/{kind}/{token}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbacksConfig {
    /// The path token the callback URLs carry (at least 16 characters;
    /// `env:`/`file:`); none: the callback endpoints answer 404.
    pub token: Option<Secret>,
}

fn default_timeout() -> u64 {
    5_000
}
fn one() -> u32 {
    1
}
fn two() -> u8 {
    2
}
fn five() -> u32 {
    5
}

impl SmsConfig {
    /// Checks the values.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        let k = |s: &str| format!("notify.sms.{s}");
        if !["aliyun", "tencent"].contains(&self.provider.as_str()) {
            return Err(ConfigError::new(k("provider"), "must be aliyun or tencent"));
        }
        if self.provider == "tencent" && self.app_id.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::new(
                k("app_id"),
                "Tencent Cloud SMS needs the SmsSdkAppId",
            ));
        }
        if self.access_key_id.trim().is_empty() {
            return Err(ConfigError::new(k("access_key_id"), "must not be empty"));
        }
        if self.sign_name.trim().is_empty() {
            return Err(ConfigError::new(k("sign_name"), "must not be empty"));
        }
        check_templates("notify.sms.templates", &self.templates)?;
        if let Some(e) = &self.endpoint {
            check_url(&k("endpoint"), e)?;
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new(k("timeout_ms"), "must be at least 1"));
        }
        Ok(())
    }
}

impl VoiceConfig {
    /// Checks the values.
    pub fn validate(&self) -> std::result::Result<(), ConfigError> {
        let k = |s: &str| format!("notify.voice.{s}");
        if self.provider != "aliyun" {
            return Err(ConfigError::new(k("provider"), "must be aliyun"));
        }
        if self.access_key_id.trim().is_empty() {
            return Err(ConfigError::new(k("access_key_id"), "must not be empty"));
        }
        check_templates("notify.voice.templates", &self.templates)?;
        if !(1..=3).contains(&self.play_times) {
            return Err(ConfigError::new(k("play_times"), "must be 1, 2 or 3"));
        }
        if let Some(e) = &self.endpoint {
            check_url(&k("endpoint"), e)?;
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new(k("timeout_ms"), "must be at least 1"));
        }
        Ok(())
    }
}

fn check_url(key: &str, u: &str) -> std::result::Result<(), ConfigError> {
    if u.starts_with("https://") || u.starts_with("http://") {
        Ok(())
    } else {
        Err(ConfigError::new(key, "must be an http(s) URL"))
    }
}

fn check_templates(
    key: &str,
    t: &BTreeMap<String, String>,
) -> std::result::Result<(), ConfigError> {
    for (name, code) in t {
        if crate::messages::param_order(name).is_none() {
            return Err(ConfigError::new(
                format!("{key}.{name}"),
                "not a message: use call, inform, escalated, no_response, acked, cleared, disposal, resolved, before, due, overdue, node, listing or digest",
            ));
        }
        if code.trim().is_empty() {
            return Err(ConfigError::new(
                format!("{key}.{name}"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

/// The channels, their limits and retry rules.
#[derive(Debug)]
pub struct Notifier {
    sms: Option<(Box<dyn Channel>, BTreeMap<String, String>)>,
    voice: Option<(Box<dyn Channel>, BTreeMap<String, String>)>,
    robots: HashMap<String, (ChannelKind, Box<dyn Channel>)>,
    webhook: Box<dyn Channel>,
    email: Option<email::Email>,
    limits: limits::Limits,
    rates: HashMap<ChannelKind, limits::Rate>,
    robot_rates: HashMap<String, limits::Rate>,
    digests: digest::Windows,
    digest_ms: i64,
    max_attempts: u32,
    retry_base_ms: u64,
}

impl Notifier {
    /// Builds the clients of a validated configuration.
    pub fn new(cfg: &NotifyConfig) -> Result<Self> {
        use limits::Rate;
        let mut rates = HashMap::new();
        let sms = match &cfg.sms {
            Some(s) => {
                rates.insert(
                    ChannelKind::Sms,
                    Rate {
                        per_minute: s.per_minute,
                        per_hour: s.per_hour,
                    },
                );
                let ch: Box<dyn Channel> = if s.provider == "tencent" {
                    Box::new(tencent::Sms::new(
                        s.endpoint
                            .clone()
                            .unwrap_or_else(|| "https://sms.tencentcloudapi.com".into()),
                        s.access_key_id.clone(),
                        s.access_key_secret.clone(),
                        s.app_id.clone().unwrap_or_default(),
                        s.sign_name.clone(),
                        s.region.clone().unwrap_or_else(|| "ap-guangzhou".into()),
                        s.templates.clone(),
                        s.timeout_ms,
                    ))
                } else {
                    Box::new(aliyun::Sms::new(
                        aliyun::Account {
                            endpoint: s
                                .endpoint
                                .clone()
                                .unwrap_or_else(|| "https://dysmsapi.aliyuncs.com/".into()),
                            key_id: s.access_key_id.clone(),
                            secret: s.access_key_secret.clone(),
                            region: s.region.clone().unwrap_or_else(|| "cn-hangzhou".into()),
                        },
                        s.sign_name.clone(),
                        s.templates.clone(),
                        s.timeout_ms,
                    ))
                };
                Some((ch, s.templates.clone()))
            }
            None => None,
        };
        let voice = cfg.voice.as_ref().map(|v| {
            rates.insert(
                ChannelKind::Voice,
                Rate {
                    per_minute: v.per_minute,
                    per_hour: v.per_hour,
                },
            );
            let ch: Box<dyn Channel> = Box::new(aliyun::Voice::new(
                aliyun::Account {
                    endpoint: v
                        .endpoint
                        .clone()
                        .unwrap_or_else(|| "https://dyvmsapi.aliyuncs.com/".into()),
                    key_id: v.access_key_id.clone(),
                    secret: v.access_key_secret.clone(),
                    region: v.region.clone().unwrap_or_else(|| "cn-hangzhou".into()),
                },
                v.called_show_number.clone(),
                v.templates.clone(),
                v.play_times,
                v.timeout_ms,
            ));
            (ch, v.templates.clone())
        });
        let mut robots = HashMap::new();
        let mut robot_rates = HashMap::new();
        for r in &cfg.robots {
            let kind = r.channel_kind().unwrap_or(ChannelKind::Wecom);
            robots.insert(
                r.name.clone(),
                (kind, Box::new(robots::Robot::new(r)) as Box<dyn Channel>),
            );
            // Robots are limited per robot (the platforms count per robot).
            robot_rates.insert(
                r.name.clone(),
                Rate {
                    per_minute: r.per_minute,
                    per_hour: 0,
                },
            );
        }
        let email = cfg.smtp.as_ref().map(email::Email::new).transpose()?;
        Ok(Self {
            sms,
            voice,
            robots,
            webhook: Box::new(webhook::Webhook::new(
                cfg.webhook.secret.as_bytes(),
                cfg.webhook.timeout_ms,
            )),
            email,
            limits: limits::Limits::default(),
            digests: digest::Windows::default(),
            digest_ms: i64::try_from(cfg.digest_ms).unwrap_or(i64::MAX),
            rates,
            robot_rates,
            max_attempts: cfg.max_attempts,
            retry_base_ms: cfg.retry_base_ms,
        })
    }

    /// Whether e-mail is configured.
    pub fn has_email(&self) -> bool {
        self.email.is_some()
    }

    /// The e-mail channel (report mails).
    pub fn email(&self) -> Option<&email::Email> {
        self.email.as_ref()
    }

    /// Whether `(kind, target)` can carry the message `template`: its
    /// provider is configured (with a template for it, for SMS and voice;
    /// the robot exists).
    pub fn can(&self, kind: ChannelKind, target: &str, template: &str) -> bool {
        match kind {
            ChannelKind::Sms => self
                .sms
                .as_ref()
                .is_some_and(|(_, t)| t.contains_key(template)),
            ChannelKind::Voice => self
                .voice
                .as_ref()
                .is_some_and(|(_, t)| t.contains_key(template)),
            ChannelKind::Email => self.email.is_some(),
            ChannelKind::Webhook => true,
            _ => self.robots.get(target).is_some_and(|(k, _)| *k == kind),
        }
    }

    fn channel(&self, kind: ChannelKind, target: &str) -> Option<&dyn Channel> {
        match kind {
            ChannelKind::Sms => self.sms.as_ref().map(|(c, _)| c.as_ref()),
            ChannelKind::Voice => self.voice.as_ref().map(|(c, _)| c.as_ref()),
            ChannelKind::Email => self.email.as_ref().map(|e| e as &dyn Channel),
            ChannelKind::Webhook => Some(self.webhook.as_ref()),
            _ => self
                .robots
                .get(target)
                .filter(|(k, _)| *k == kind)
                .map(|(_, c)| c.as_ref()),
        }
    }

    fn limit(
        &self,
        kind: ChannelKind,
        target: &str,
        red: bool,
        now: i64,
    ) -> std::result::Result<(), i64> {
        let rate = if kind.is_robot() {
            self.robot_rates.get(target)
        } else {
            self.rates.get(&kind)
        };
        match rate {
            Some(r) => self.limits.take(kind, target, *r, red, now),
            None => Ok(()),
        }
    }
}

/// What happened to one message, for the warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The delivery.
    pub delivery_id: String,
    /// `warning`, `task`, …
    pub subject: String,
    /// Its id.
    pub subject_id: String,
    /// The person.
    pub person: String,
    /// Why it was sent.
    pub purpose: String,
    /// The ladder step (warning calls).
    pub step: Option<i64>,
    /// The channel.
    pub channel: String,
    /// It reached the person (sent, or a receipt said delivered); false:
    /// it failed for good (no more attempts, or a receipt said so).
    pub reached: bool,
}

/// The columns [`Outcome::of_row`] reads.
const OUTCOME_COLS: &str = "id, subject, subject_id, person_id, purpose, step, channel";

impl Outcome {
    /// The outcome of a `deliveries` row read with [`OUTCOME_COLS`].
    fn of_row(r: &sqlx::any::AnyRow, reached: bool) -> Result<Self> {
        Ok(Self {
            delivery_id: r.try_get("id")?,
            subject: r.try_get("subject")?,
            subject_id: r.try_get("subject_id")?,
            person: r.try_get("person_id")?,
            purpose: r.try_get("purpose")?,
            step: r.try_get("step")?,
            channel: r.try_get("channel")?,
            reached,
        })
    }
}

/// What one tick of the worker did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Worked {
    /// Messages sent.
    pub sent: usize,
    /// Attempts that failed.
    pub failed: usize,
    /// Messages held back by a rate limit.
    pub throttled: usize,
    /// What happened to each message that was sent or failed for good.
    pub outcomes: Vec<Outcome>,
}

const CLAIM_COLS: &str = "subject, subject_id, person_id, channel, target, purpose, template, title, body, \
                          params, attempts, step, out_id";

/// A due row, as the worker first sees it.
struct Due {
    id: String,
    subject: String,
    inbox: Option<digest::Inbox>,
    channel: String,
    priority: Priority,
}

/// Sends the due messages, red first; the non-red notices that waited for
/// one inbox go as one digest ([`digest`]). Returns what it did.
pub async fn deliver_tick(app: &App, now: i64) -> Result<Worked> {
    let rows = sqlx::query(
        "SELECT id, subject, person_id, channel, target, priority FROM deliveries \
         WHERE state = 'QUEUED' AND next_ms <= $1 AND lease_until <= $1 \
         ORDER BY priority DESC, next_ms, id LIMIT 100",
    )
    .bind(now)
    .fetch_all(&app.db)
    .await?;
    let mut due = Vec::with_capacity(rows.len());
    for r in rows {
        let channel: String = r.try_get("channel")?;
        let target: String = r.try_get("target")?;
        due.push(Due {
            id: r.try_get("id")?,
            subject: r.try_get("subject")?,
            inbox: ChannelKind::parse(&channel).map(|k| digest::Inbox {
                person: r.try_get("person_id").unwrap_or_default(),
                channel: k,
                target,
            }),
            channel,
            priority: Priority::from_value(r.try_get("priority")?),
        });
    }
    let lease = app.cfg.scheduler.lease_ms as i64;
    let window = app.notifier.digest_ms;
    let mut w = Worked::default();
    let mut claimed = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for (i, d) in due.iter().enumerate() {
        if !taken.insert(d.id.as_str()) {
            continue;
        }
        // The rows that go as this one message: it alone, or every
        // digestible row waiting for its inbox (oldest first, at most
        // `digest::MAX`).
        let digest = d.inbox.as_ref().filter(|ib| {
            window > 0
                && digest::digestible(&d.subject, d.priority)
                && app.notifier.can(ib.channel, &ib.target, digest::TEMPLATE)
        });
        let mut batch = vec![d];
        if let Some(ib) = digest {
            for o in &due[i + 1..] {
                if batch.len() < digest::MAX
                    && o.inbox.as_ref() == Some(ib)
                    && digest::digestible(&o.subject, o.priority)
                    && taken.insert(o.id.as_str())
                {
                    batch.push(o);
                }
            }
        }
        // The digest window (for a digest), then the rate limit.
        let held = d.inbox.as_ref().map_or(Ok(()), |ib| {
            digest
                .map_or(Ok(()), |_| app.notifier.digests.open(ib, now))
                .and_then(|()| {
                    app.notifier
                        .limit(ib.channel, &ib.target, d.priority.is_red(), now)
                })
        });
        if let Err(at) = held {
            w.throttled += batch.len();
            app.metrics
                .notifications_throttled
                .with_label_values(&[&d.channel])
                .inc_by(batch.len() as u64);
            let why = format!(
                "held back by notify limits until {}",
                crate::messages::time(crate::messages::Lang::En, at)
            );
            for b in &batch {
                sqlx::query("UPDATE deliveries SET next_ms = $1, last_error = $2 WHERE id = $3 AND state = 'QUEUED'")
                    .bind(at)
                    .bind(&why)
                    .bind(&b.id)
                    .execute(&app.db)
                    .await?;
            }
            continue;
        }
        let mut got = Vec::with_capacity(batch.len());
        for b in &batch {
            let n = sqlx::query(
                "UPDATE deliveries SET lease_owner = $1, lease_until = $2 \
                 WHERE id = $3 AND state = 'QUEUED' AND lease_until <= $4",
            )
            .bind(&app.instance)
            .bind(now + lease)
            .bind(&b.id)
            .bind(now)
            .execute(&app.db)
            .await?
            .rows_affected();
            if n == 1 {
                got.push(b.id.clone());
            }
        }
        let id = match (digest, got.len()) {
            (_, 0) => continue,
            (Some(ib), _) => {
                app.notifier.digests.used(ib.clone(), window, now);
                digest::merge(app, ib, &got).await?
            }
            (None, _) => d.id.clone(),
        };
        let row = sqlx::query(&format!(
            "SELECT {CLAIM_COLS} FROM deliveries WHERE id = $1"
        ))
        .bind(&id)
        .fetch_one(&app.db)
        .await?;
        claimed.push((id, row));
    }
    // Up to 16 at once: one slow provider does not hold up the others.
    let results: Vec<_> = futures_util::stream::iter(claimed)
        .map(|(id, row)| async move {
            let r = send_one(app, &id, &row).await;
            (id, row, r)
        })
        .buffered(16)
        .collect()
        .await;
    for (id, row, result) in results {
        record(app, &id, &row, result, &mut w).await?;
    }
    Ok(w)
}

async fn send_one(
    app: &App,
    id: &str,
    row: &sqlx::any::AnyRow,
) -> std::result::Result<Sent, Failure> {
    let get = |c: &str| row.try_get::<String, _>(c).unwrap_or_default();
    let getopt = |c: &str| db::opt_str(row, c).ok().flatten().unwrap_or_default();
    let (subject, channel, target, purpose) = (
        get("subject"),
        get("channel"),
        get("target"),
        get("purpose"),
    );
    let (subject_id, person, title, body) = (
        get("subject_id"),
        get("person_id"),
        get("title"),
        get("body"),
    );
    if subject == crate::report_mail::SUBJECT && channel == "email" {
        return crate::report_mail::send(app, id, &target, &subject_id, &purpose, &title, &body)
            .await;
    }
    let Some(kind) = ChannelKind::parse(&channel) else {
        return Err(Failure::Permanent {
            reason: format!("unknown channel {channel:?}"),
        });
    };
    let Some(ch) = app.notifier.channel(kind, &target) else {
        return Err(Failure::Permanent {
            reason: format!("{channel} to {target:?} is not configured (any more)"),
        });
    };
    let params: Value = serde_json::from_str(&getopt("params")).unwrap_or(Value::Null);
    let (template, out_id) = (getopt("template"), getopt("out_id"));
    let m = Message {
        delivery_id: id,
        out_id: &out_id,
        subject: &subject,
        subject_id: &subject_id,
        person_id: &person,
        purpose: &purpose,
        template: &template,
        target: &target,
        title: &title,
        body: &body,
        params: &params,
    };
    ch.send(&m).await
}

async fn record(
    app: &App,
    id: &str,
    row: &sqlx::any::AnyRow,
    result: std::result::Result<Sent, Failure>,
    w: &mut Worked,
) -> Result<()> {
    let get = |c: &str| row.try_get::<String, _>(c).unwrap_or_default();
    let (subject, subject_id, person, channel, purpose) = (
        get("subject"),
        get("subject_id"),
        get("person_id"),
        get("channel"),
        get("purpose"),
    );
    let step: Option<i64> = row.try_get("step").unwrap_or(None);
    let attempts: i64 = row.try_get::<i64, _>("attempts").unwrap_or(0) + 1;
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let outcome = |reached: bool| Outcome {
        delivery_id: id.to_string(),
        subject: subject.clone(),
        subject_id: subject_id.clone(),
        person: person.clone(),
        purpose: purpose.clone(),
        step,
        channel: channel.clone(),
        reached,
    };
    match result {
        Ok(sent) => {
            w.sent += 1;
            app.metrics
                .notifications_sent
                .with_label_values(&[&channel])
                .inc();
            sqlx::query(
                "UPDATE deliveries SET state = 'SENT', attempts = $1, sent_ms = $2, last_error = NULL, provider_id = $3 \
                 WHERE id = $4 AND lease_owner = $5",
            )
            .bind(attempts)
            .bind(now)
            .bind(sent.provider_id)
            .bind(id)
            .bind(&app.instance)
            .execute(&mut *tx)
            .await?;
            let carried = settle_merged(&mut tx, id, "SENT", now).await?;
            db::audit(
                &mut tx,
                now,
                "system:notifier",
                "delivery",
                id,
                Some("QUEUED"),
                "SENT",
                &format!("{channel} to {person} ({purpose}, {subject} {subject_id})"),
            )
            .await?;
            w.outcomes.push(outcome(true));
            w.sent += carried.len();
            w.outcomes.extend(carried);
        }
        Err(Failure::Throttled { reason, after_ms }) => {
            w.throttled += 1;
            app.metrics
                .notifications_throttled
                .with_label_values(&[&channel])
                .inc();
            sqlx::query(
                "UPDATE deliveries SET next_ms = $1, lease_until = 0, last_error = $2 WHERE id = $3 AND lease_owner = $4",
            )
            .bind(now + after_ms.max(1))
            .bind(&reason)
            .bind(id)
            .bind(&app.instance)
            .execute(&mut *tx)
            .await?;
            tracing::info!(delivery = %id, %channel, %person, %reason, "notify: throttled; waiting");
        }
        Err(f) => {
            w.failed += 1;
            app.metrics
                .notifications_failed
                .with_label_values(&[&channel])
                .inc();
            let permanent = matches!(f, Failure::Permanent { .. });
            let give_up = permanent || attempts >= i64::from(app.notifier.max_attempts);
            // Doubling, at most 15 minutes apart (or what the provider
            // asked).
            let backoff = (app.notifier.retry_base_ms as i64)
                .saturating_mul(1 << (attempts - 1).clamp(0, 20))
                .min(15 * 60_000);
            let delay = match &f {
                Failure::Retry {
                    after_ms: Some(a), ..
                } => *a,
                _ => backoff,
            };
            let why = f.reason().to_string();
            sqlx::query(
                "UPDATE deliveries SET state = $1, attempts = $2, next_ms = $3, lease_until = 0, \
                 last_error = $4 WHERE id = $5 AND lease_owner = $6",
            )
            .bind(if give_up { "FAILED" } else { "QUEUED" })
            .bind(attempts)
            .bind(now + delay)
            .bind(&why)
            .bind(id)
            .bind(&app.instance)
            .execute(&mut *tx)
            .await?;
            tracing::warn!(delivery = %id, %channel, %person, attempt = attempts, permanent, error = %why, "notify: delivery failed");
            if give_up {
                db::audit(
                    &mut tx,
                    now,
                    "system:notifier",
                    "delivery",
                    id,
                    Some("QUEUED"),
                    "FAILED",
                    &format!(
                        "{} after {attempts} attempt(s): {why}",
                        if permanent {
                            "failed for good"
                        } else {
                            "gave up"
                        }
                    ),
                )
                .await?;
                w.outcomes.push(outcome(false));
                let carried = settle_merged(&mut tx, id, "FAILED", now).await?;
                w.outcomes.extend(carried);
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Settles the messages a digest carried (`digest_id` = `carrier`) with
/// it: `SENT` or `FAILED`. Returns their outcomes. Receipts name the carrier (it alone has the provider's
/// id) and settle it alone.
async fn settle_merged(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    carrier: &str,
    state: &str,
    now: i64,
) -> Result<Vec<Outcome>> {
    let rows = sqlx::query(&format!(
        "SELECT {OUTCOME_COLS} FROM deliveries WHERE digest_id = $1 AND state = 'MERGED'"
    ))
    .bind(carrier)
    .fetch_all(&mut **tx)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query(
        "UPDATE deliveries SET state = $1, sent_ms = $2, \
         last_error = $3 WHERE digest_id = $4 AND state = 'MERGED'",
    )
    .bind(state)
    .bind((state == "SENT").then_some(now))
    .bind(format!("carried by digest {carrier}"))
    .bind(carrier)
    .execute(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Outcome::of_row(r, state == "SENT"))
        .collect()
}

/// A provider's receipt for a message it took: `delivered` to the handset
/// (or the call was answered), or not. `key` is the provider's message id
/// (`provider_id`) or our `out_id`. Returns the outcome (for the
/// warnings), none when no sent message matches.
pub async fn receipt(app: &App, key: &str, delivered: bool, text: &str) -> Result<Option<Outcome>> {
    if key.is_empty() {
        return Ok(None);
    }
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let Some(r) = sqlx::query(&format!(
        "SELECT {OUTCOME_COLS} FROM deliveries \
         WHERE (provider_id = $1 OR out_id = $1) AND state IN ('SENT', 'DELIVERED', 'UNDELIVERED') LIMIT 1"
    ))
    .bind(key)
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(None);
    };
    let id: String = r.try_get("id")?;
    let to = if delivered {
        "DELIVERED"
    } else {
        "UNDELIVERED"
    };
    sqlx::query("UPDATE deliveries SET state = $1, receipt = $2, receipt_ms = $3 WHERE id = $4")
        .bind(to)
        .bind(text)
        .bind(now)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    db::audit(
        &mut tx,
        now,
        "system:receipt",
        "delivery",
        &id,
        Some("SENT"),
        to,
        text,
    )
    .await?;
    tx.commit().await?;
    Ok(Some(Outcome::of_row(&r, delivered)?))
}

/// Queues `drafts` now on `c` (outside an intake batch: reminders, the
/// scheduler's steps): the same rows [`crate::deferred::Deferred`] writes.
pub async fn queue(c: &mut AnyConnection, now: i64, drafts: Vec<Draft>) -> Result<()> {
    let mut d = crate::deferred::Deferred::default();
    for dr in drafts {
        d.delivery(now, dr);
    }
    d.flush(c).await
}

/// Deliveries, optionally of one subject.
pub async fn list(
    c: &mut AnyConnection,
    subject_id: Option<&str>,
) -> Result<Vec<crate::rows::Delivery>> {
    use crate::db::Columns as _;
    let sql = format!(
        "SELECT {} FROM deliveries WHERE ($1 = '' OR subject_id = $1) ORDER BY created_ms, id LIMIT 1000",
        crate::rows::Delivery::select()
    );
    Ok(sqlx::query_as(&sql)
        .bind(subject_id.unwrap_or(""))
        .fetch_all(&mut *c)
        .await?)
}

/// Normalises a mainland mobile number for matching: digits only, without
/// `+86`/`0086`/`86` before an 11-digit number.
pub fn phone_key(p: &str) -> String {
    let d: String = p.chars().filter(char::is_ascii_digit).collect();
    for prefix in ["0086", "86"] {
        if let Some(rest) = d.strip_prefix(prefix)
            && rest.len() == 11
        {
            return rest.to_string();
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_put_red_calls_first() {
        let red_call = Priority::warning(Level::Red, true);
        let red_info = Priority::warning(Level::Red, false);
        let orange_call = Priority::warning(Level::Orange, true);
        assert!(red_call > red_info && red_info > orange_call);
        assert!(Priority::warning(Level::Blue, false) > Priority::ROUTINE);
        assert!(red_call.is_red() && red_info.is_red() && !orange_call.is_red());
        assert!(red_call.asks_answer() && orange_call.asks_answer());
        assert!(!red_info.asks_answer() && !Priority::ROUTINE.asks_answer());
    }

    #[test]
    fn phone_keys() {
        assert_eq!(phone_key("+86 138-0000-0001"), "13800000001");
        assert_eq!(phone_key("008613800000001"), "13800000001");
        assert_eq!(phone_key("13800000001"), "13800000001");
        assert_eq!(phone_key("+85290000000"), "85290000000");
    }
}
