//! `monitor.toml`: every section has its own struct and `validate`, and every
//! error names the key (`sla.red_min: must be at least 1`).

use std::collections::HashSet;
use std::path::Path;

use anquan_protocol::Level;
use serde::{Deserialize, Serialize};

/// A configuration error that names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// The dotted key, e.g. `seed.venues[2].region`.
    pub key: String,
    /// What is wrong and what to do.
    pub reason: String,
}

impl From<crate::secret::SecretError> for ConfigError {
    fn from(e: crate::secret::SecretError) -> Self {
        Self::new(e.key, e.message)
    }
}

impl ConfigError {
    /// A new error about `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[auth]`.
    pub auth: AuthConfig,
    /// `[sla]`: acknowledgement SLA per level.
    pub sla: SlaConfig,
    /// `[tasks]`: disposal task deadlines per level.
    pub tasks: TaskConfig,
    /// `[reminders]`: the 事项催办 ladder.
    pub reminders: ReminderConfig,
    /// `[scheduler]`.
    pub scheduler: SchedulerConfig,
    /// `[notify]`: channels and retries.
    pub notify: NotifyConfig,
    /// `[key_risk]`: the 重点风控 proposal rule.
    pub key_risk: KeyRiskConfig,
    /// `[policy]`: who is called, informed and told of the outcome, per
    /// level and channel (see `src/policy.rs`, monitor/README.md).
    pub policy: crate::policy::PolicyConfig,
    /// `[ack]`: acknowledgement links in messages.
    pub ack: crate::ack::AckConfig,
    /// `[[task_templates]]`: recurring tasks (任务督导).
    pub task_templates: Vec<crate::templates::Template>,
    /// `[seed]`: registry rows inserted (or kept) at start.
    pub seed: Seed,
    /// `[web]`: the browser front (sessions, sign-in limits, public URL).
    pub web: crate::web::WebConfig,
    /// `[[users]]`: web accounts (argon2 hashes), written at start.
    pub users: Vec<crate::web::auth::UserSeed>,
    /// `[metrics]`: the Prometheus page.
    pub metrics: MetricsConfig,
    /// `[reports]`: report files (PDF through Chromium).
    pub reports: ReportsConfig,
    /// `[evidence]`: photo evidence on tasks and hazards.
    pub evidence: EvidenceConfig,
    /// `[correlation]`: alarm storms grouped into one warning per cause
    /// (`src/correlation.rs`).
    pub correlation: crate::correlation::CorrelationConfig,
}

/// `[reports]`: `format=pdf` prints the HTML report with headless
/// Chromium; `format=xlsx` needs nothing outside the binary.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportsConfig {
    /// The Chromium binary (a name on `PATH` or a path). Missing → PDF
    /// requests get 503 with this key named.
    pub chromium: String,
    /// Longest a PDF print may take, ms.
    pub pdf_timeout_ms: u64,
    /// Region tiers (`city`, `county`, `town`) whose reports are generated
    /// on schedule, every period, as frozen snapshots; empty = none.
    pub scheduled_tiers: Vec<String>,
    /// How many days back a (re)started monitor fills in snapshots it
    /// missed.
    pub catch_up_days: u32,
    /// `[[reports.mail]]`: who gets the reports generated on schedule by
    /// e-mail (needs `[notify.smtp]`).
    pub mail: Vec<ReportMail>,
}

/// `[[reports.mail]]`: when a scheduled report of `region` (one of
/// `periods`) is frozen, mail it to `to` and to the people rostered in
/// `roles` for that region: an HTML body and the report as an attachment.
/// Sent once per report and address (restarts and replicas included),
/// retried like every notification (`notify.max_attempts`,
/// `notify.retry_base_ms`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportMail {
    /// The region whose scheduled reports are sent (each covers the regions
    /// under it). Its tier must be in `reports.scheduled_tiers`, else it
    /// has none.
    pub region: String,
    /// The periods sent (`daily`, `weekly`, `half-monthly`, `monthly`,
    /// `quarterly`, `yearly`); empty = all.
    #[serde(default)]
    pub periods: Vec<String>,
    /// E-mail addresses (`[]` when `roles` names the recipients).
    pub to: Vec<String>,
    /// Also the people on the duty roster in these roles for `region`
    /// itself (any shift) who have an e-mail address, looked up when the
    /// report is frozen.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The attachment: `xlsx` (in process), `csv` or `pdf` (printed by
    /// `reports.chromium` in the scheduler's delivery step; a failed print
    /// fails the attempt, which is retried).
    #[serde(default)]
    pub attach: ReportAttach,
}

/// `reports.mail[].attach`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportAttach {
    /// An XLSX workbook.
    #[default]
    Xlsx,
    /// CSV (UTF-8).
    Csv,
    /// PDF through headless Chromium.
    Pdf,
}

impl ReportAttach {
    /// The format's name (also the file extension).
    pub fn name(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Csv => "csv",
            Self::Pdf => "pdf",
        }
    }

    /// From [`Self::name`].
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Xlsx, Self::Csv, Self::Pdf]
            .into_iter()
            .find(|a| a.name() == s)
    }
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self {
            chromium: "chromium".into(),
            pdf_timeout_ms: 60_000,
            scheduled_tiers: vec!["city".into(), "county".into()],
            catch_up_days: 7,
            mail: Vec::new(),
        }
    }
}

/// `[evidence]`: photos uploaded to tasks and hazards (JPEG, PNG or WebP,
/// recognised by their first bytes), stored under `dir` named by their
/// SHA-256.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Where the files go (created on the first upload; relative to the
    /// working directory).
    pub dir: String,
    /// Largest photo, bytes.
    pub max_bytes: usize,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            dir: "evidence".into(),
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// `[metrics]`: `GET /metrics` (Prometheus text format). It has no token:
/// it shows counts, never names or ids; bind `server.listen` to a private
/// address or turn it off when scrapers must not reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` (404 when false).
    pub enabled: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: String,
    /// Largest request body, bytes (an alarm event is at most 1 KiB).
    pub max_body_bytes: usize,
    /// Anonymous hazard reports (`POST /public/reports`) one client address
    /// may send per minute; above it 429. 0 = no limit.
    pub public_reports_per_min: u32,
    /// Reverse proxies (addresses or CIDR blocks, e.g. `127.0.0.1`,
    /// `10.0.0.0/8`) whose `X-Forwarded-For` names the client. From any
    /// other peer the header is ignored (anyone can send it), and the
    /// client is the peer itself. The client address keys the sign-in and
    /// public-report limits.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8088".into(),
            max_body_bytes: 64 * 1024,
            public_reports_per_min: 5,
            trusted_proxies: Vec::new(),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://monitor.db?mode=rwc` (embedded default) or
    /// `postgres://user@host/db` (replicas).
    pub url: String,
    /// Pool size for PostgreSQL (SQLite always uses one connection).
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://monitor.db?mode=rwc".into(),
            max_connections: 8,
        }
    }
}

/// `[auth]`: bearer tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Tokens the gateways use on `POST /api/v1/alarms`, valid for every
    /// site. Prefer `[[auth.gateways]]`, whose tokens are scoped.
    pub intake_tokens: Vec<String>,
    /// Operator tokens for every other `/api/v1` endpoint: machines (a
    /// duty-room phone system, a provisioning script) that name the person
    /// they act for. People use their session or a personal API token.
    pub api_tokens: Vec<String>,
    /// `[[auth.operators]]`: named operator tokens, each optionally held to
    /// some regions or to reading (prefer them to `api_tokens`, which are
    /// unnamed and see everything).
    pub operators: Vec<OperatorToken>,
    /// `[[auth.gateways]]`: one token per gateway, valid only for the
    /// alarms of its sites (a stolen site token cannot raise alarms
    /// elsewhere).
    pub gateways: Vec<GatewayToken>,
    /// Alarms per second one intake token may send (a token bucket of the
    /// same size); above it the answer is 429, which the gateway retries,
    /// so nothing is lost. 0 = no limit.
    pub intake_per_token_per_s: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            intake_tokens: Vec::new(),
            api_tokens: Vec::new(),
            operators: Vec::new(),
            gateways: Vec::new(),
            intake_per_token_per_s: 10_000,
        }
    }
}

/// `[[auth.operators]]`: a machine's operator token with a name (audit rows
/// say `operator:<name>`) and, optionally, a narrower reach.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorToken {
    /// Its name, for the audit trail and the logs.
    pub name: String,
    /// Its bearer token, at least 16 characters.
    pub token: String,
    /// The regions it sees and acts in, with the regions under them (as a
    /// person of that region would); empty: every region.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Reads only: every write it sends is refused (403).
    #[serde(default)]
    pub read_only: bool,
}

/// `[[auth.gateways]]`: a gateway's intake token and the sites it may
/// report.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayToken {
    /// The gateway's name, for logs and errors (e.g. its `gateway.id`).
    pub name: String,
    /// Its bearer token (the gateway's `forward.http.token`), at least 16
    /// characters.
    pub token: String,
    /// The `site` ids its alarm events may carry.
    pub sites: Vec<String>,
}

/// `[sla]`: minutes to acknowledge, per level, before the next person on
/// duty is called (叫应).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// 红: act now.
    pub red_min: u64,
    /// 橙.
    pub orange_min: u64,
    /// 黄.
    pub yellow_min: u64,
    /// 蓝 ("next shift").
    pub blue_min: u64,
}

impl Default for SlaConfig {
    fn default() -> Self {
        Self {
            red_min: 5,
            orange_min: 15,
            yellow_min: 60,
            blue_min: 480,
        }
    }
}

impl SlaConfig {
    /// The SLA of `level`, ms.
    pub fn ack_ms(&self, level: Level) -> i64 {
        let m = match level {
            Level::Red => self.red_min,
            Level::Orange => self.orange_min,
            Level::Yellow => self.yellow_min,
            Level::Blue => self.blue_min,
        };
        (m as i64).saturating_mul(60_000)
    }
}

/// `[tasks]`: hours to finish a disposal task, per level.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// 红.
    pub red_h: u64,
    /// 橙.
    pub orange_h: u64,
    /// 黄.
    pub yellow_h: u64,
    /// 蓝.
    pub blue_h: u64,
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            red_h: 24,
            orange_h: 72,
            yellow_h: 168,
            blue_h: 360,
        }
    }
}

impl TaskConfig {
    /// The deadline of a disposal task for `level`, ms from creation.
    pub fn deadline_ms(&self, level: Level) -> i64 {
        let h = match level {
            Level::Red => self.red_h,
            Level::Orange => self.orange_h,
            Level::Yellow => self.yellow_h,
            Level::Blue => self.blue_h,
        };
        (h as i64).saturating_mul(3_600_000)
    }
}

/// `[reminders]`: the ladder (spec §1.5).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReminderConfig {
    /// Remind the owner this many hours before the due time.
    pub before_h: u64,
    /// Overdue (notify the county) this many hours after the due time.
    pub overdue_after_h: u64,
    /// One work node (escalate to the city), days after due.
    pub node_days: u64,
    /// Propose 挂牌督办 this many days after due.
    pub listing_days: u64,
}

impl Default for ReminderConfig {
    fn default() -> Self {
        Self {
            before_h: 72,
            overdue_after_h: 0,
            node_days: 15,
            listing_days: 30,
        }
    }
}

/// `[scheduler]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Loop period, ms.
    pub tick_ms: u64,
    /// How long a claimed delivery stays with its worker, ms.
    pub lease_ms: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick_ms: 1000,
            lease_ms: 30_000,
        }
    }
}

/// `[notify]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Attempts per delivery before it is FAILED (a provider's permanent
    /// error fails it at once); when every call of a 叫应 step failed, the
    /// next step is called without waiting for the SLA.
    pub max_attempts: u32,
    /// First retry delay, ms; doubles per attempt (at most 15 minutes), or
    /// what the provider asks.
    pub retry_base_ms: u64,
    /// The language of messages to people without their own `lang`: `zh`
    /// (default) or `en`.
    pub lang: String,
    /// The digest window, ms (0: off): at most one non-red notice that
    /// asks no answer goes to a person on one channel per window; what
    /// comes meanwhile waits and goes as one message listing them all when
    /// the window ends. The first notice goes at once; while notices keep
    /// coming the window doubles, up to 4 times this; red and calls are
    /// never held.
    pub digest_ms: u64,
    /// `[notify.webhook]`.
    pub webhook: WebhookConfig,
    /// `[notify.smtp]`; without it e-mail addresses are not used.
    pub smtp: Option<SmtpConfig>,
    /// `[notify.sms]`; without it nobody is sent SMS.
    pub sms: Option<crate::notify::SmsConfig>,
    /// `[notify.voice]`; without it nobody is called by phone.
    pub voice: Option<crate::notify::VoiceConfig>,
    /// `[[notify.robots]]`: WeCom, DingTalk and Feishu group robots.
    pub robots: Vec<crate::notify::robots::RobotConfig>,
    /// `[notify.callbacks]`: receipts and SMS replies from the providers.
    pub callbacks: crate::notify::CallbacksConfig,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            retry_base_ms: 2_000,
            lang: "zh".into(),
            digest_ms: 60_000,
            webhook: WebhookConfig::default(),
            smtp: None,
            sms: None,
            voice: None,
            robots: Vec::new(),
            callbacks: crate::notify::CallbacksConfig::default(),
        }
    }
}

/// `[notify.webhook]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// HMAC-SHA256 key; the signature goes in `X-Anquan-Signature:
    /// sha256=<hex>`.
    pub secret: String,
    /// Timeout per request, ms.
    pub timeout_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            secret: String::new(),
            timeout_ms: 5_000,
        }
    }
}

/// `[notify.smtp]`: the relay, and how to reach it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host (also the name its TLS certificate must carry).
    pub host: String,
    /// Relay port (25 or 587 for `starttls`, 465 for `tls`).
    pub port: u16,
    /// Sender address.
    pub from: String,
    /// Timeout per message, ms.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_ms: u64,
    /// `none` (plain, for a relay on the same host), `starttls` (upgrade
    /// required: no message goes out in clear) or `tls` (TLS from the first
    /// byte). Certificates are verified (rustls) against the system's CA
    /// store plus `ca_file`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// A PEM file with the CA certificate(s) of a private CA that signed the
    /// relay's certificate.
    #[serde(default)]
    pub ca_file: Option<String>,
    /// User name for SMTP AUTH (PLAIN or LOGIN, whichever the relay offers);
    /// give `password` with it. Refused with `tls = "none"` unless `host` is
    /// a loopback address (the password would cross the network in clear).
    #[serde(default)]
    pub username: Option<String>,
    /// The AUTH password: `env:NAME`, `file:PATH` (relative to the config
    /// file) or the password itself (`check` warns). Never logged.
    #[serde(default)]
    pub password: Option<crate::secret::Secret>,
}

impl SmtpConfig {
    /// Whether `host` is this machine (`localhost`, 127.0.0.0/8, `::1`).
    pub fn host_is_loopback(&self) -> bool {
        let h = self.host.trim_start_matches('[').trim_end_matches(']');
        h.eq_ignore_ascii_case("localhost")
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// `notify.smtp.tls`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP.
    #[default]
    None,
    /// STARTTLS, required.
    Starttls,
    /// Implicit TLS (SMTPS).
    Tls,
}

fn default_smtp_timeout() -> u64 {
    10_000
}

/// `[key_risk]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyRiskConfig {
    /// Alarms (raised warnings) on one venue …
    pub alarms: u64,
    /// … within this many days propose the venue for the 重点风控 list.
    pub window_days: u64,
}

impl Default for KeyRiskConfig {
    fn default() -> Self {
        Self {
            alarms: 3,
            window_days: 30,
        }
    }
}

/// `url` with a relative SQLite file path made relative to `dir`
/// (`sqlite://monitor.db?mode=rwc` → `sqlite:///etc/anquan/monitor.db?mode=rwc`);
/// other URLs, absolute paths and in-memory databases unchanged.
pub fn sqlite_url_under(url: &str, dir: &Path) -> String {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (file, query) = rest
        .split_once('?')
        .map_or((rest, None), |(f, q)| (f, Some(q)));
    if file.is_empty() || file.starts_with(':') || Path::new(file).is_absolute() {
        return url.to_string();
    }
    let full = dir.join(file);
    match query {
        Some(q) => format!("sqlite://{}?{q}", full.display()),
        None => format!("sqlite://{}", full.display()),
    }
}

/// The roles the service knows: a person's main role, a rota's role.
/// `shift_leader` is the 带班领导 of a region's duty; `task_force_leader`
/// the 专班 leader.
pub const ROLES: [&str; 8] = [
    "principal",
    "safety_officer",
    "grid_officer",
    "county",
    "city",
    "duty_officer",
    "shift_leader",
    "task_force_leader",
];

/// `[seed]`: the registry as code; rows are inserted when missing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Seed {
    /// `[[seed.regions]]`.
    pub regions: Vec<crate::registry::Region>,
    /// `[[seed.venues]]`.
    pub venues: Vec<crate::registry::Venue>,
    /// `[[seed.devices]]`.
    pub devices: Vec<crate::registry::Device>,
    /// `[[seed.people]]`.
    pub people: Vec<crate::registry::Person>,
    /// `[[seed.duty]]`: the rota (always on, absolute windows, or
    /// recurring shifts).
    pub duty: Vec<crate::registry::Duty>,
    /// `[[seed.grids]]`: grid cells (网格) and their officers.
    pub grids: Vec<crate::registry::Grid>,
    /// `[[seed.venue_people]]`: who is the principal and the safety officer
    /// of which venue.
    pub venue_people: Vec<crate::registry::VenuePerson>,
    /// `[[seed.duty_overrides]]`: dated changes of the rota (调班).
    pub duty_overrides: Vec<crate::registry::DutyOverride>,
    /// `[[seed.holidays]]`: public holidays (法定节假日) the rota knows.
    pub holidays: Vec<crate::registry::Holiday>,
}

impl Config {
    /// Reads, parses and validates `path`. Relative paths in it (the
    /// SQLite file, the evidence directory, `file:` secrets, the SMTP CA
    /// file) are relative to the file's directory, not to wherever the
    /// service happens to be started from.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let mut cfg = Self::parse_in(&text, dir)?;
        if let Some(d) = dir {
            cfg.resolve_paths(d);
        }
        Ok(cfg)
    }

    /// Makes the relative paths of the configuration relative to `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let under = |p: &str| -> Option<String> {
            let path = Path::new(p);
            (!p.is_empty() && path.is_relative()).then(|| dir.join(path).display().to_string())
        };
        self.database.url = sqlite_url_under(&self.database.url, dir);
        if let Some(p) = under(&self.evidence.dir) {
            self.evidence.dir = p;
        }
        if let Some(smtp) = self.notify.smtp.as_mut()
            && let Some(p) = smtp.ca_file.as_deref().and_then(under)
        {
            smtp.ca_file = Some(p);
        }
    }

    /// Parses and validates TOML text (`file:` secrets relative to the
    /// working directory).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_in(text, None)
    }

    /// Parses TOML text, reads its `env:`/`file:` secrets (relative `file:`
    /// paths relative to `dir`) and validates it.
    pub fn parse_in(text: &str, dir: Option<&Path>) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigError::new("(file)", format!("not valid TOML: {e}")))?;
        let mut cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::new(key, e.into_inner().message().to_string())
        })?;
        for (key, secret) in cfg.secrets_mut() {
            if let Some(d) = dir {
                secret.resolve_path(d);
            }
            secret.resolve(&key)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every secret with its key.
    fn secrets_mut(&mut self) -> Vec<(String, &mut crate::secret::Secret)> {
        let mut v = Vec::new();
        if let Some(p) = self.notify.smtp.as_mut().and_then(|s| s.password.as_mut()) {
            v.push(("notify.smtp.password".to_string(), p));
        }
        if let Some(s) = self.notify.sms.as_mut() {
            v.push((
                "notify.sms.access_key_secret".into(),
                &mut s.access_key_secret,
            ));
        }
        if let Some(s) = self.notify.voice.as_mut() {
            v.push((
                "notify.voice.access_key_secret".into(),
                &mut s.access_key_secret,
            ));
        }
        for (i, r) in self.notify.robots.iter_mut().enumerate() {
            v.push((format!("notify.robots[{i}].url"), &mut r.url));
            if let Some(s) = r.secret.as_mut() {
                v.push((format!("notify.robots[{i}].secret"), s));
            }
        }
        if let Some(t) = self.notify.callbacks.token.as_mut() {
            v.push(("notify.callbacks.token".into(), t));
        }
        if let Some(t) = self.ack.secret.as_mut() {
            v.push(("ack.secret".into(), t));
        }
        v
    }

    /// What `check` warns about: secrets written in the config file, secret
    /// files other users can read.
    pub fn warnings(&self) -> Vec<String> {
        let mut shown = self.clone();
        let mut out: Vec<String> = shown
            .secrets_mut()
            .into_iter()
            .filter_map(|(key, s)| s.warning(&key))
            .collect();
        if self.ack.secret.is_none() {
            out.push(
                "ack.secret is not set: messages carry the SMS reply code but no one-click acknowledgement link"
                    .into(),
            );
        }
        for (key, t) in [
            ("notify.sms", self.notify.sms.as_ref().map(|s| &s.templates)),
            (
                "notify.voice",
                self.notify.voice.as_ref().map(|v| &v.templates),
            ),
        ] {
            if let Some(t) = t
                && !t.contains_key("call")
            {
                out.push(format!(
                    "{key}.templates has no `call` template: calls will not go out on this channel"
                ));
            }
        }
        out
    }

    /// Checks the values and the references between seed rows.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::new(
                "server.listen",
                "must be an address like 127.0.0.1:8088",
            ));
        }
        if self.server.max_body_bytes < anquan_protocol::MAX_PAYLOAD {
            return Err(ConfigError::new(
                "server.max_body_bytes",
                format!("must be at least {}", anquan_protocol::MAX_PAYLOAD),
            ));
        }
        crate::web::client::TrustedProxies::parse(&self.server.trusted_proxies)?;
        self.correlation.validate()?;
        let u = &self.database.url;
        if !(u.starts_with("sqlite:")
            || u.starts_with("postgres://")
            || u.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "database.url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if (self.auth.intake_tokens.is_empty() && self.auth.gateways.is_empty())
            || self.auth.intake_tokens.iter().any(|t| t.len() < 8)
        {
            return Err(ConfigError::new(
                "auth.intake_tokens",
                "give at least one token here or in [[auth.gateways]], each at least 8 characters (the gateway's forward.http.token)",
            ));
        }
        let mut tokens: HashSet<&str> =
            self.auth.intake_tokens.iter().map(String::as_str).collect();
        for (i, g) in self.auth.gateways.iter().enumerate() {
            if g.name.trim().is_empty() {
                return Err(ConfigError::new(
                    format!("auth.gateways[{i}].name"),
                    "must not be empty",
                ));
            }
            if g.token.len() < 16 {
                return Err(ConfigError::new(
                    format!("auth.gateways[{i}].token"),
                    "must be at least 16 characters",
                ));
            }
            if !tokens.insert(g.token.as_str()) {
                return Err(ConfigError::new(
                    format!("auth.gateways[{i}].token"),
                    "is used twice; give every gateway a token of its own",
                ));
            }
            if g.sites.is_empty() || g.sites.iter().any(|s| s.trim().is_empty()) {
                return Err(ConfigError::new(
                    format!("auth.gateways[{i}].sites"),
                    "name at least one site id (the `site` of its alarm events)",
                ));
            }
        }
        if (self.auth.api_tokens.is_empty() && self.auth.operators.is_empty())
            || self.auth.api_tokens.iter().any(|t| t.len() < 8)
        {
            return Err(ConfigError::new(
                "auth.api_tokens",
                "give at least one token here or in [[auth.operators]], each at least 8 characters",
            ));
        }
        let mut op_tokens: HashSet<&str> =
            self.auth.api_tokens.iter().map(String::as_str).collect();
        let mut op_names = HashSet::new();
        for (i, o) in self.auth.operators.iter().enumerate() {
            if o.name.trim().is_empty() || !op_names.insert(o.name.as_str()) {
                return Err(ConfigError::new(
                    format!("auth.operators[{i}].name"),
                    "give every operator token a name of its own",
                ));
            }
            if o.token.len() < 16 {
                return Err(ConfigError::new(
                    format!("auth.operators[{i}].token"),
                    "must be at least 16 characters",
                ));
            }
            if !op_tokens.insert(o.token.as_str()) || tokens.contains(o.token.as_str()) {
                return Err(ConfigError::new(
                    format!("auth.operators[{i}].token"),
                    "is used twice; give every operator and gateway a token of its own",
                ));
            }
            if o.regions.iter().any(|r| r.trim().is_empty()) {
                return Err(ConfigError::new(
                    format!("auth.operators[{i}].regions"),
                    "region ids must not be empty (leave the list empty for every region)",
                ));
            }
        }
        for (k, v) in [
            ("sla.red_min", self.sla.red_min),
            ("sla.orange_min", self.sla.orange_min),
            ("sla.yellow_min", self.sla.yellow_min),
            ("sla.blue_min", self.sla.blue_min),
            ("tasks.red_h", self.tasks.red_h),
            ("tasks.orange_h", self.tasks.orange_h),
            ("tasks.yellow_h", self.tasks.yellow_h),
            ("tasks.blue_h", self.tasks.blue_h),
            ("reminders.node_days", self.reminders.node_days),
            ("scheduler.tick_ms", self.scheduler.tick_ms),
            ("scheduler.lease_ms", self.scheduler.lease_ms),
            ("notify.retry_base_ms", self.notify.retry_base_ms),
            ("notify.webhook.timeout_ms", self.notify.webhook.timeout_ms),
            ("key_risk.alarms", self.key_risk.alarms),
            ("key_risk.window_days", self.key_risk.window_days),
            ("reports.pdf_timeout_ms", self.reports.pdf_timeout_ms),
            ("evidence.max_bytes", self.evidence.max_bytes as u64),
        ] {
            if v == 0 {
                return Err(ConfigError::new(k, "must be at least 1"));
            }
        }
        if self.reminders.listing_days <= self.reminders.node_days {
            return Err(ConfigError::new(
                "reminders.listing_days",
                "must be later than reminders.node_days",
            ));
        }
        if self.notify.max_attempts == 0 {
            return Err(ConfigError::new(
                "notify.max_attempts",
                "must be at least 1",
            ));
        }
        if self.notify.webhook.secret.len() < 16 {
            return Err(ConfigError::new(
                "notify.webhook.secret",
                "must be at least 16 characters (receivers check the HMAC with it)",
            ));
        }
        if self.reports.chromium.trim().is_empty() {
            return Err(ConfigError::new("reports.chromium", "must not be empty"));
        }
        for (i, t) in self.reports.scheduled_tiers.iter().enumerate() {
            if !["city", "county", "town"].contains(&t.as_str()) {
                return Err(ConfigError::new(
                    format!("reports.scheduled_tiers[{i}]"),
                    format!("{t:?}: use city, county or town"),
                ));
            }
        }
        if self.reports.catch_up_days > 366 {
            return Err(ConfigError::new(
                "reports.catch_up_days",
                "must be at most 366",
            ));
        }
        for (i, m) in self.reports.mail.iter().enumerate() {
            let key = |k: &str| format!("reports.mail[{i}].{k}");
            if m.region.trim().is_empty() {
                return Err(ConfigError::new(key("region"), "must not be empty"));
            }
            for (j, p) in m.periods.iter().enumerate() {
                if crate::reports::period_name(p) != Some(p.as_str()) {
                    return Err(ConfigError::new(
                        format!("reports.mail[{i}].periods[{j}]"),
                        format!("{p:?}: use one of {:?}", crate::reports::PERIODS),
                    ));
                }
            }
            for (j, a) in m.to.iter().enumerate() {
                if a.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(ConfigError::new(
                        format!("reports.mail[{i}].to[{j}]"),
                        format!("{a:?} is not an e-mail address"),
                    ));
                }
            }
            for (j, r) in m.roles.iter().enumerate() {
                check_role(&format!("reports.mail[{i}].roles[{j}]"), r)?;
            }
            if m.to.is_empty() && m.roles.is_empty() {
                return Err(ConfigError::new(
                    key("to"),
                    "give at least one address here or a role in roles",
                ));
            }
            if self.notify.smtp.is_none() {
                return Err(ConfigError::new(
                    key("region"),
                    "reports are mailed through [notify.smtp], which is not set",
                ));
            }
            if self.reports.scheduled_tiers.is_empty() {
                return Err(ConfigError::new(
                    "reports.scheduled_tiers",
                    "is empty, so no report is generated to mail ([[reports.mail]] is set)",
                ));
            }
        }
        if self.evidence.dir.trim().is_empty() {
            return Err(ConfigError::new("evidence.dir", "must not be empty"));
        }
        if let Some(s) = &self.notify.smtp {
            if s.host.is_empty() {
                return Err(ConfigError::new("notify.smtp.host", "must not be empty"));
            }
            if s.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err(ConfigError::new(
                    "notify.smtp.from",
                    "must be an e-mail address",
                ));
            }
            if s.ca_file.is_some() && s.tls == SmtpTls::None {
                return Err(ConfigError::new(
                    "notify.smtp.ca_file",
                    "only used with tls = \"starttls\" or \"tls\"",
                ));
            }
            match (&s.username, &s.password) {
                (None, None) => {}
                (Some(u), Some(p)) => {
                    if u.trim().is_empty() {
                        return Err(ConfigError::new(
                            "notify.smtp.username",
                            "must not be empty",
                        ));
                    }
                    if p.is_empty() {
                        return Err(ConfigError::new(
                            "notify.smtp.password",
                            "must not be empty",
                        ));
                    }
                    if s.tls == SmtpTls::None && !s.host_is_loopback() {
                        return Err(ConfigError::new(
                            "notify.smtp.username",
                            "SMTP AUTH over a plain connection would send the password in clear: \
                             set tls = \"starttls\" or \"tls\" (or use a relay on a loopback address)",
                        ));
                    }
                }
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        "notify.smtp.password",
                        "is required with notify.smtp.username",
                    ));
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        "notify.smtp.username",
                        "is required with notify.smtp.password",
                    ));
                }
            }
        }
        if crate::messages::Lang::parse(&self.notify.lang).is_none() {
            return Err(ConfigError::new("notify.lang", "must be zh or en"));
        }
        if self.notify.digest_ms > 3_600_000 {
            return Err(ConfigError::new(
                "notify.digest_ms",
                "at most 3600000 (an hour): a longer window would hold notices past their use",
            ));
        }
        if let Some(s) = &self.notify.sms {
            s.validate()?;
        }
        if let Some(v) = &self.notify.voice {
            v.validate()?;
        }
        let mut robots: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        for (i, r) in self.notify.robots.iter().enumerate() {
            r.validate(&format!("notify.robots[{i}]"))?;
            if robots.insert(r.name.as_str(), r.kind.as_str()).is_some() {
                return Err(ConfigError::new(
                    format!("notify.robots[{i}].name"),
                    "duplicate name",
                ));
            }
        }
        if let Some(t) = &self.notify.callbacks.token
            && t.expose().len() < 16
        {
            return Err(ConfigError::new(
                "notify.callbacks.token",
                "must be at least 16 characters (it authenticates the providers' callbacks)",
            ));
        }
        self.ack.validate()?;
        for (i, p) in self.seed.people.iter().enumerate() {
            for (kind, robot) in p.channel_list() {
                if let Some(name) = robot {
                    match robots.get(name.as_str()) {
                        Some(k) if *k == kind.as_str() => {}
                        Some(k) => {
                            return Err(ConfigError::new(
                                format!("seed.people[{i}].channels"),
                                format!("robot {name:?} is a {k} robot, not {}", kind.as_str()),
                            ));
                        }
                        None => {
                            return Err(ConfigError::new(
                                format!("seed.people[{i}].channels"),
                                format!("no robot {name:?} in [[notify.robots]]"),
                            ));
                        }
                    }
                }
            }
        }
        let people: HashSet<&str> = self.seed.people.iter().map(|p| p.id.as_str()).collect();
        let venues: HashSet<&str> = self.seed.venues.iter().map(|v| v.id.as_str()).collect();
        self.policy.compile(&people, &venues)?;
        let mut ids = HashSet::new();
        for (i, t) in self.task_templates.iter().enumerate() {
            t.validate(&format!("task_templates[{i}]"))?;
            if !ids.insert(t.id.as_str()) {
                return Err(ConfigError::new(
                    format!("task_templates[{i}].id"),
                    "duplicate id",
                ));
            }
        }
        self.web.validate(&self.server.listen)?;
        crate::web::auth::validate_users(&self.users)?;
        for (i, u) in self.users.iter().enumerate() {
            let seeded = u
                .person_id
                .as_deref()
                .and_then(|p| self.seed.people.iter().find(|x| x.id == p));
            if let Some(p) = seeded
                && !crate::web::auth::role_fits(&u.role, &p.role)
            {
                return Err(ConfigError::new(
                    format!("users[{i}].role"),
                    format!(
                        "{} does not fit person {} whose registry role is {}",
                        u.role, p.id, p.role
                    ),
                ));
            }
        }
        self.seed.validate()
    }
}

/// Checks that `role` is one the service knows.
pub fn check_role(key: &str, role: &str) -> Result<(), ConfigError> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(ConfigError::new(
            key,
            format!("unknown role {role:?}; use one of {ROLES:?}"),
        ))
    }
}

impl Seed {
    fn validate(&self) -> Result<(), ConfigError> {
        let mut regions = HashSet::new();
        for (i, r) in self.regions.iter().enumerate() {
            r.validate(&format!("seed.regions[{i}]"))?;
            if let Some(p) = &r.parent_id
                && !regions.contains(p.as_str())
            {
                return Err(ConfigError::new(
                    format!("seed.regions[{i}].parent_id"),
                    format!("region {p:?} must be listed before its children"),
                ));
            }
            if !regions.insert(r.id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.regions[{i}].id"),
                    "duplicate id",
                ));
            }
        }
        let mut grids = HashSet::new();
        for (i, g) in self.grids.iter().enumerate() {
            g.validate(&format!("seed.grids[{i}]"))?;
            if !regions.contains(g.region_id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.grids[{i}].region_id"),
                    format!("no region {:?} in seed.regions", g.region_id),
                ));
            }
            if !grids.insert(g.id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.grids[{i}].id"),
                    "duplicate id",
                ));
            }
        }
        let mut venues = HashSet::new();
        for (i, v) in self.venues.iter().enumerate() {
            v.validate(&format!("seed.venues[{i}]"))?;
            if !regions.contains(v.region_id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.venues[{i}].region_id"),
                    format!("no region {:?} in seed.regions", v.region_id),
                ));
            }
            if let Some(g) = &v.grid_id
                && !grids.contains(g.as_str())
            {
                return Err(ConfigError::new(
                    format!("seed.venues[{i}].grid_id"),
                    format!("no grid {g:?} in seed.grids"),
                ));
            }
            venues.insert(v.id.as_str());
        }
        for (i, d) in self.devices.iter().enumerate() {
            if !venues.contains(d.venue_id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.devices[{i}].venue_id"),
                    format!("no venue {:?} in seed.venues", d.venue_id),
                ));
            }
        }
        let mut people = HashSet::new();
        for (i, p) in self.people.iter().enumerate() {
            p.validate(&format!("seed.people[{i}]"))?;
            if !regions.contains(p.region_id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.people[{i}].region_id"),
                    format!("no region {:?} in seed.regions", p.region_id),
                ));
            }
            people.insert(p.id.as_str());
        }
        let known = |key: String, id: &str| {
            if people.contains(id) {
                Ok(())
            } else {
                Err(ConfigError::new(
                    key,
                    format!("no person {id:?} in seed.people"),
                ))
            }
        };
        for (i, g) in self.grids.iter().enumerate() {
            for (j, o) in g.officers.iter().enumerate() {
                known(format!("seed.grids[{i}].officers[{j}]"), o)?;
            }
        }
        for (i, l) in self.venue_people.iter().enumerate() {
            l.validate(&format!("seed.venue_people[{i}]"))?;
            if !venues.contains(l.venue_id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.venue_people[{i}].venue_id"),
                    format!("no venue {:?} in seed.venues", l.venue_id),
                ));
            }
            known(format!("seed.venue_people[{i}].person_id"), &l.person_id)?;
        }
        for (i, d) in self.duty.iter().enumerate() {
            d.validate(&format!("seed.duty[{i}]"))?;
            known(format!("seed.duty[{i}].person_id"), &d.person_id)?;
            if !regions.contains(d.region_id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.duty[{i}].region_id"),
                    format!("no region {:?} in seed.regions", d.region_id),
                ));
            }
        }
        for (i, o) in self.duty_overrides.iter().enumerate() {
            o.validate(&format!("seed.duty_overrides[{i}]"))?;
            known(format!("seed.duty_overrides[{i}].person_id"), &o.person_id)?;
            if !regions.contains(o.region_id.as_str()) {
                return Err(ConfigError::new(
                    format!("seed.duty_overrides[{i}].region_id"),
                    format!("no region {:?} in seed.regions", o.region_id),
                ));
            }
        }
        for (i, h) in self.holidays.iter().enumerate() {
            h.validate(&format!("seed.holidays[{i}]"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[auth]
intake_tokens = ["gateway-token-1"]
api_tokens = ["operator-token-1"]
[notify.webhook]
secret = "0123456789abcdef"
"#;

    #[test]
    fn the_example_is_valid() {
        let text = include_str!("../monitor.example.toml");
        let cfg = Config::parse(text).unwrap();
        assert!(!cfg.seed.venues.is_empty());
    }

    #[test]
    fn defaults_follow_the_spec() {
        let cfg = Config::parse(MIN).unwrap();
        assert_eq!(cfg.sla.ack_ms(Level::Red), 5 * 60_000);
        assert_eq!(cfg.sla.ack_ms(Level::Orange), 15 * 60_000);
        assert_eq!(cfg.sla.ack_ms(Level::Yellow), 60 * 60_000);
        assert_eq!(cfg.database.url, "sqlite://monitor.db?mode=rwc");
        assert_eq!(cfg.key_risk.alarms, 3);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse(&format!("{MIN}\n[sla]\nred_min = 0\n")).unwrap_err();
        assert_eq!(e.key, "sla.red_min");
        let e = Config::parse(&format!("{MIN}\n[sla]\nred_mins = 3\n")).unwrap_err();
        assert_eq!(e.key, "sla.red_mins");
        assert!(e.reason.contains("red_mins"), "{e}");
        let e = Config::parse(&format!("{MIN}\n[sla]\nred_min = \"x\"\n")).unwrap_err();
        assert_eq!(e.key, "sla.red_min");
        let e = Config::parse(&format!("{MIN}\n[policy.red]\ncall = [\"county.mayor\"]\n"))
            .unwrap_err();
        assert_eq!(e.key, "policy.red.call[0]");
        let e = Config::parse(&format!(
            "{MIN}\n[[seed.venues]]\nid = \"v1\"\nname = \"x\"\nsector = \"hotel\"\naddress = \"a\"\nregion_id = \"nowhere\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "seed.venues[0].region_id");
        let e = Config::parse("[auth]\nintake_tokens = []\n").unwrap_err();
        assert_eq!(e.key, "auth.intake_tokens");
        let e = Config::parse(&format!(
            "{MIN}[[auth.gateways]]\nname = \"gw-a\"\ntoken = \"0123456789abcdef\"\nsites = []\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "auth.gateways[0].sites");
        let e = Config::parse(&format!(
            "{MIN}[[auth.gateways]]\nname = \"gw-a\"\ntoken = \"short\"\nsites = [\"s1\"]\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "auth.gateways[0].token");
        let op = |name: &str, token: &str, extra: &str| {
            format!("[[auth.operators]]\nname = \"{name}\"\ntoken = \"{token}\"\n{extra}")
        };
        let ok = format!(
            "{MIN}{}{}",
            op("bridge", "bridge-token-0123456789", "regions = [\"r1\"]\n"),
            op("reader", "reader-token-0123456789", "read_only = true\n")
        );
        let cfg = Config::parse(&ok).unwrap();
        assert_eq!(cfg.auth.operators.len(), 2);
        assert!(cfg.auth.operators[1].read_only);
        for (extra, key) in [
            (op("bridge", "short", ""), "auth.operators[0].token"),
            (
                op("", "bridge-token-0123456789", ""),
                "auth.operators[0].name",
            ),
            (
                format!(
                    "{}{}",
                    op("a", "bridge-token-0123456789", ""),
                    op("a", "other-token-0123456789", "")
                ),
                "auth.operators[1].name",
            ),
            (
                format!(
                    "{}{}",
                    op("a", "bridge-token-0123456789", ""),
                    op("b", "bridge-token-0123456789", "")
                ),
                "auth.operators[1].token",
            ),
            (
                op("a", "bridge-token-0123456789", "regions = [\"\"]\n"),
                "auth.operators[0].regions",
            ),
        ] {
            let e = Config::parse(&format!("{MIN}{extra}")).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn people_policies_and_channels_are_checked_by_key() {
        const SEED: &str = r#"
[[seed.regions]]
id = "c"
name = "C"
tier = "city"
[[seed.venues]]
id = "v1"
name = "V"
sector = "hotel"
address = "a"
region_id = "c"
"#;
        let person = |extra: &str| {
            format!(
                "{MIN}{SEED}[[seed.people]]\nid = \"p1\"\nname = \"P\"\nrole = \"safety_officer\"\nregion_id = \"c\"\n{extra}"
            )
        };
        let ok = Config::parse(&person(
            "phone = \"13800000001\"\nchannels = \"sms,voice\"\n",
        ))
        .unwrap();
        assert_eq!(ok.seed.people[0].channel_list().len(), 2);
        for (text, key) in [
            (
                person("email = \"p@example.invalid\"\nchannels = \"sms\"\n"),
                "seed.people[0].phone",
            ),
            (person("phone = \"12345\"\n"), "seed.people[0].phone"),
            (
                person("phone = \"13800000001\"\nlang = \"fr\"\n"),
                "seed.people[0].lang",
            ),
            (
                person("phone = \"13800000001\"\nchannels = \"wecom:nowhere\"\n"),
                "seed.people[0].channels",
            ),
            (
                person("phone = \"13800000001\"\nchannels = \"pager\"\n"),
                "seed.people[0].channels",
            ),
            (person(""), "seed.people[0].phone"),
            (
                format!(
                    "{}[policy.red]\ncall = [\"person:ghost\"]\n",
                    person("phone = \"13800000001\"\n")
                ),
                "policy.red.call[0]",
            ),
            (
                format!(
                    "{}[[seed.venue_people]]\nvenue_id = \"v1\"\nperson_id = \"ghost\"\nrole = \"principal\"\n",
                    person("phone = \"13800000001\"\n")
                ),
                "seed.venue_people[0].person_id",
            ),
            (
                format!(
                    "{}[[seed.venue_people]]\nvenue_id = \"v1\"\nperson_id = \"p1\"\nrole = \"boss\"\n",
                    person("phone = \"13800000001\"\n")
                ),
                "seed.venue_people[0].role",
            ),
            (
                format!(
                    "{}[[seed.duty]]\nperson_id = \"p1\"\nrole = \"duty_officer\"\nregion_id = \"c\"\nstart = \"08:00\"\n",
                    person("phone = \"13800000001\"\n")
                ),
                "seed.duty[0].end",
            ),
            (
                format!(
                    "{}[[seed.duty]]\nperson_id = \"p1\"\nrole = \"duty_officer\"\nregion_id = \"c\"\ndays = \"89\"\n",
                    person("phone = \"13800000001\"\n")
                ),
                "seed.duty[0].days",
            ),
            (
                format!(
                    "{}[[seed.duty_overrides]]\ndate = \"2026-02-30\"\nperson_id = \"p1\"\nrole = \"duty_officer\"\nregion_id = \"c\"\n",
                    person("phone = \"13800000001\"\n")
                ),
                "seed.duty_overrides[0].date",
            ),
            (
                format!(
                    "{}[[seed.grids]]\nid = \"g1\"\nname = \"G\"\nregion_id = \"c\"\nofficers = [\"ghost\"]\n",
                    person("phone = \"13800000001\"\n")
                ),
                "seed.grids[0].officers[0]",
            ),
            (
                format!(
                    "{}[notify.sms]\nprovider = \"aliyun\"\naccess_key_id = \"k\"\naccess_key_secret = \"s\"\nsign_name = \"x\"\ntemplates = {{ pager = \"SMS_1\" }}\n",
                    person("phone = \"13800000001\"\n")
                ),
                "notify.sms.templates.pager",
            ),
            (
                format!(
                    "{}[notify.sms]\nprovider = \"tencent\"\naccess_key_id = \"k\"\naccess_key_secret = \"s\"\nsign_name = \"x\"\n",
                    person("phone = \"13800000001\"\n")
                ),
                "notify.sms.app_id",
            ),
            (
                format!(
                    "{}[ack]\nsecret = \"short\"\n",
                    person("phone = \"13800000001\"\n")
                ),
                "ack.secret",
            ),
        ] {
            let e = Config::parse(&text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn report_mail_is_checked_by_key() {
        const SMTP: &str =
            "[notify.smtp]\nhost = \"127.0.0.1\"\nport = 25\nfrom = \"m@example.invalid\"\n";
        let mail =
            |body: &str, smtp: &str| Config::parse(&format!("{MIN}{smtp}[[reports.mail]]\n{body}"));
        let ok = mail(
            "region = \"jx\"\nperiods = [\"monthly\", \"yearly\"]\nto = [\"boss@example.invalid\"]\nroles = [\"city\"]\nattach = \"pdf\"\n",
            SMTP,
        )
        .unwrap();
        assert_eq!(ok.reports.mail[0].attach, ReportAttach::Pdf);
        assert_eq!(
            mail("region = \"jx\"\nto = [\"a@example.invalid\"]\n", SMTP)
                .unwrap()
                .reports
                .mail[0]
                .attach,
            ReportAttach::Xlsx
        );
        for (body, smtp, key) in [
            (
                "region = \"\"\nto = [\"a@example.invalid\"]\n",
                SMTP,
                "reports.mail[0].region",
            ),
            (
                "region = \"jx\"\nperiods = [\"annually\"]\nto = [\"a@example.invalid\"]\n",
                SMTP,
                "reports.mail[0].periods[0]",
            ),
            (
                "region = \"jx\"\nto = [\"not an address\"]\n",
                SMTP,
                "reports.mail[0].to[0]",
            ),
            (
                "region = \"jx\"\nto = []\nroles = [\"mayor\"]\n",
                SMTP,
                "reports.mail[0].roles[0]",
            ),
            ("region = \"jx\"\nto = []\n", SMTP, "reports.mail[0].to"),
            ("region = \"jx\"\n", SMTP, "reports.mail[0]"),
            (
                "region = \"jx\"\nto = [\"a@example.invalid\"]\n",
                "",
                "reports.mail[0].region",
            ),
            (
                "region = \"jx\"\nto = [\"a@example.invalid\"]\nattach = \"docx\"\n",
                SMTP,
                "reports.mail[0].attach",
            ),
        ] {
            let e = mail(body, smtp).unwrap_err();
            assert_eq!(e.key, key, "{body}: {e}");
        }
        let e = Config::parse(&format!(
            "{MIN}{SMTP}[reports]\nscheduled_tiers = []\n[[reports.mail]]\nregion = \"jx\"\nto = [\"a@example.invalid\"]\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "reports.scheduled_tiers");
    }

    #[test]
    fn smtp_credentials_need_tls_off_loopback() {
        let smtp = |host: &str, tls: &str, extra: &str| {
            Config::parse(&format!(
                "{MIN}[notify.smtp]\nhost = \"{host}\"\nport = 587\nfrom = \"m@example.invalid\"\ntls = \"{tls}\"\n{extra}"
            ))
        };
        let creds = "username = \"monitor\"\npassword = \"pw-1\"\n";
        let e = smtp("mail.example.invalid", "none", creds).unwrap_err();
        assert_eq!(e.key, "notify.smtp.username");
        assert!(e.reason.contains("in clear"), "{e}");
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            assert!(smtp(host, "none", creds).is_ok(), "{host}");
        }
        for tls in ["starttls", "tls"] {
            let cfg = smtp("mail.example.invalid", tls, creds).unwrap();
            let s = cfg.notify.smtp.as_ref().unwrap();
            assert_eq!(s.password.as_ref().map(|p| p.expose()), Some("pw-1"));
            // The effective configuration and Debug never show it.
            let shown = toml::to_string(&cfg).unwrap();
            assert!(!shown.contains("pw-1") && !format!("{cfg:?}").contains("pw-1"));
            let w = cfg.warnings();
            assert_eq!(
                w.iter()
                    .filter(|w| w.contains("notify.smtp.password"))
                    .count(),
                1,
                "{w:?}"
            );
        }
        let e = smtp("127.0.0.1", "none", "username = \"monitor\"\n").unwrap_err();
        assert_eq!(e.key, "notify.smtp.password");
        let e = smtp("127.0.0.1", "none", "password = \"x\"\n").unwrap_err();
        assert_eq!(e.key, "notify.smtp.username");
        let e = smtp(
            "127.0.0.1",
            "none",
            "username = \"m\"\npassword = \"env:ANQUAN_MONITOR_NO_SUCH_VAR\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key, "notify.smtp.password");
        // file: relative to the config file's directory.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp.pw"), "from-file\n").unwrap();
        let text = format!(
            "{MIN}[notify.smtp]\nhost = \"127.0.0.1\"\nport = 25\nfrom = \"m@example.invalid\"\nusername = \"m\"\npassword = \"file:smtp.pw\"\n"
        );
        let cfg = Config::parse_in(&text, Some(dir.path())).unwrap();
        let s = cfg.notify.smtp.as_ref().unwrap();
        assert_eq!(s.password.as_ref().map(|p| p.expose()), Some("from-file"));
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let d = Path::new("/etc/anquan");
        assert_eq!(
            sqlite_url_under("sqlite://monitor.db?mode=rwc", d),
            "sqlite:///etc/anquan/monitor.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_under("sqlite:data/m.db", d),
            "sqlite:///etc/anquan/data/m.db"
        );
        for same in [
            "sqlite:///var/lib/m.db?mode=rwc",
            "sqlite::memory:",
            "postgres://u@h/db",
        ] {
            assert_eq!(sqlite_url_under(same, d), same);
        }
        let mut cfg = Config::parse(MIN).unwrap();
        cfg.evidence.dir = "evidence".into();
        cfg.resolve_paths(d);
        assert_eq!(cfg.evidence.dir, "/etc/anquan/evidence");
        assert_eq!(cfg.database.url, "sqlite:///etc/anquan/monitor.db?mode=rwc");
    }
}
