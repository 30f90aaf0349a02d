//! Warnings: the I/O side of the warning state machine ([`machine`]) and
//! the call ladder ([`ladder`]). Every path that changes a warning — the
//! alarm intake, an acknowledgement (API, web, link, SMS reply, voice
//! key), a confirmation, the scheduler's deadline watch, a delivery's
//! outcome — runs the same three steps: the machine turns the input into
//! effects, [`apply`] resolves the policy's people for the warning's venue
//! at that moment ([`crate::directory`]) and lets the ladder plan the
//! notices, and the notices become `deliveries` rows written with the
//! warning's new state in one transaction. Nothing here sends; the queue
//! does ([`crate::notify`]).
//!
//! Also the venue's dynamic color and the 重点风控 decision.

pub mod ladder;
pub mod machine;

use std::collections::HashMap;

use anquan_protocol::Level;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use crate::App;
use crate::ack::Grant;
use crate::db::{self, Columns, opt_str};
use crate::deferred::Deferred;
use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::messages::{self, Facts, Lang};
use crate::notify::{Draft, Priority};
use crate::policy::{ChannelKind, Policy, Selector};
use crate::rows::{Events, Warning, WarningDetail, WarningEvent};
use ladder::{Given, Groups, History, Ladder, Note, Notice, Purpose, Trigger};
use machine::{Effect, Input, Phase};

/// A warning row as the logic reads and writes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Id.
    pub id: String,
    /// `site/device/rule`.
    pub alarm_key: String,
    /// Venue (none: an unregistered site).
    pub venue_id: Option<String>,
    /// The venue's region.
    pub region_id: Option<String>,
    /// Site.
    pub site: String,
    /// Device.
    pub device: String,
    /// Device kind.
    pub kind: String,
    /// Rule.
    pub rule: String,
    /// What the machine reads.
    pub w: machine::Warning,
    /// The ladder's position.
    pub ladder: Ladder,
    /// The latest value.
    pub value: f64,
    /// Its threshold.
    pub threshold: f64,
    /// Raised (Unix ms).
    pub raised_ms: i64,
    /// Acknowledged (Unix ms).
    pub acked_ms: Option<i64>,
    /// By whom.
    pub acked_by: Option<String>,
    /// How (`api`, `web`, `link`, `sms`, `voice`).
    pub acked_via: Option<String>,
    /// 1 false alarm, 0 real.
    pub false_alarm: Option<i64>,
    /// Resolved (Unix ms).
    pub resolved_ms: Option<i64>,
    /// Written with an INSERT (new in this transaction).
    pub new: bool,
}

/// The columns [`Record::from_row`] reads.
pub const RECORD_COLS: &str = "id, alarm_key, venue_id, region_id, site, device, kind, rule, state, level, \
     max_level, clearable, ladder_step, ack_due_ms, value, threshold, raised_ms, acked_ms, acked_by, acked_via, \
     false_alarm, resolved_ms";

impl Record {
    /// From a row with [`RECORD_COLS`].
    pub fn from_row(r: &sqlx::any::AnyRow) -> Result<Self> {
        let level = Level::parse(&r.try_get::<String, _>("level")?).unwrap_or(Level::Blue);
        Ok(Self {
            id: r.try_get("id")?,
            alarm_key: r.try_get("alarm_key")?,
            venue_id: opt_str(r, "venue_id")?,
            region_id: opt_str(r, "region_id")?,
            site: r.try_get("site")?,
            device: r.try_get("device")?,
            kind: r.try_get("kind")?,
            rule: r.try_get("rule")?,
            w: machine::Warning {
                phase: Phase::parse(&r.try_get::<String, _>("state")?).unwrap_or(Phase::Raised),
                level,
                max_level: Level::parse(&r.try_get::<String, _>("max_level")?).unwrap_or(level),
                cleared: r.try_get::<i64, _>("clearable")? != 0,
            },
            ladder: Ladder {
                step: r.try_get("ladder_step")?,
                due_ms: r.try_get("ack_due_ms")?,
            },
            value: r.try_get::<Option<f64>, _>("value")?.unwrap_or(0.0),
            threshold: r.try_get::<Option<f64>, _>("threshold")?.unwrap_or(0.0),
            raised_ms: r.try_get("raised_ms")?,
            acked_ms: r.try_get("acked_ms")?,
            acked_by: opt_str(r, "acked_by")?,
            acked_via: opt_str(r, "acked_via")?,
            false_alarm: r.try_get("false_alarm")?,
            resolved_ms: r.try_get("resolved_ms")?,
            new: false,
        })
    }

    /// The policy of the warning's highest level at its venue.
    pub fn policy<'a>(&self, app: &'a App) -> &'a Policy {
        app.policies.get(self.w.max_level, self.venue_id.as_deref())
    }

    /// The machine's rules for this warning.
    pub fn rules(&self, app: &App) -> machine::Rules {
        machine::Rules {
            cleared_needs_ack: self.policy(app).cleared_needs_ack,
        }
    }
}

/// What applying effects reads besides the warning: the people (and their
/// contacts), what each warning's ladder gave so far, the grants issued.
/// An intake batch fills it once for all its warnings.
#[derive(Debug, Default)]
pub struct Ctx {
    /// Venues, devices, rota, contacts.
    pub dir: Directory,
    /// Per warning.
    pub history: HashMap<String, History>,
    /// Per warning.
    pub grants: HashMap<String, Vec<Grant>>,
    /// Warnings whose history and grants were read.
    pub loaded: std::collections::HashSet<String>,
    /// The maintenance windows in force (read once, at the first load).
    pub windows: Option<Vec<crate::maintenance::Window>>,
    /// New warnings whose first calls wait until then (Unix ms) while an
    /// alarm storm may still group them ([`crate::correlation`]).
    pub settle: HashMap<String, i64>,
}

impl Ctx {
    /// Reads what applying effects to `records` needs: their venues and
    /// devices, the rota, the policies' people, their histories and grants.
    pub async fn load(
        &mut self,
        app: &App,
        c: &mut AnyConnection,
        records: &[&Record],
        now: i64,
    ) -> Result<()> {
        if self.windows.is_none() {
            self.windows = Some(crate::maintenance::active(c, now).await?);
        }
        let venues: Vec<String> = records.iter().filter_map(|r| r.venue_id.clone()).collect();
        let devices: Vec<String> = records.iter().map(|r| r.device.clone()).collect();
        self.dir
            .load(c, &venues, &devices, &app.policies.people(), &[], now)
            .await?;
        let ids: Vec<String> = records
            .iter()
            .filter(|r| !r.new && !self.loaded.contains(&r.id))
            .map(|r| r.id.clone())
            .collect();
        for r in records {
            self.loaded.insert(r.id.clone());
            self.history.entry(r.id.clone()).or_default();
            self.grants.entry(r.id.clone()).or_default();
        }
        if ids.is_empty() {
            return Ok(());
        }
        for (w, g) in history_of(c, &ids).await? {
            self.history.entry(w).or_default().given.push(g);
        }
        for g in crate::ack::of_warnings(c, &ids).await? {
            self.grants.entry(g.warning_id.clone()).or_default().push(g);
        }
        Ok(())
    }
}

/// The notices given about `warnings`, oldest first.
pub async fn history_of(
    c: &mut AnyConnection,
    warnings: &[String],
) -> Result<Vec<(String, Given)>> {
    let mut ids: Vec<String> = warnings.to_vec();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let n = ids.len().next_power_of_two();
    let sql = format!(
        "SELECT warning_id, person_id, purpose, step, at_ms FROM warning_calls WHERE warning_id IN ({}) ORDER BY at_ms, id",
        crate::intake::memo::marks(c, 1, n)
    );
    let mut q = sqlx::query(&sql);
    for i in 0..n {
        q = q.bind(ids[i.min(ids.len() - 1)].clone());
    }
    let mut out = Vec::new();
    for r in q.fetch_all(&mut *c).await? {
        let Some(purpose) = Purpose::parse(&r.try_get::<String, _>("purpose")?) else {
            continue;
        };
        out.push((
            r.try_get("warning_id")?,
            Given {
                person: r.try_get("person_id")?,
                purpose,
                step: r.try_get("step")?,
                at_ms: r.try_get("at_ms")?,
            },
        ));
    }
    Ok(out)
}

/// The groups of `policy` resolved for a warning at `venue` at `now`.
pub fn groups(dir: &Directory, policy: &Policy, venue: Option<&str>, now: i64) -> Groups {
    let r = |s: &[Selector]| dir.resolve_all(s, venue, now);
    Groups {
        call: r(&policy.call),
        inform: r(&policy.inform),
        chain: policy.chain.iter().map(|s| r(s)).collect(),
        no_response: r(&policy.no_response),
        closure: r(&policy.closure),
        closure_called: policy.closure.contains(&Selector::Called),
        closure_informed: policy.closure.contains(&Selector::Informed),
    }
}

/// The deployment's message language.
pub fn default_lang(app: &App) -> Lang {
    Lang::parse(&app.cfg.notify.lang).unwrap_or_default()
}

/// Applies the machine's effects to `r` (already in its new state): audit
/// rows, the ladder's notices as deliveries, all into `d`. No I/O: `ctx`
/// holds what it reads.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    app: &App,
    ctx: &mut Ctx,
    d: &mut Deferred,
    r: &mut Record,
    from: Phase,
    effects: Vec<Effect>,
    actor: &str,
    now: i64,
) {
    let mut phase_from = from;
    for e in effects {
        match e {
            Effect::Phase(p, why) => {
                if p == Phase::Resolved && r.resolved_ms.is_none() {
                    r.resolved_ms = Some(now);
                }
                if p == Phase::Resolved || p == Phase::Acked {
                    r.ladder.due_ms = None;
                }
                d.audit(
                    now,
                    actor,
                    "warning",
                    &r.id,
                    Some(phase_from.as_str()),
                    p.as_str(),
                    why,
                );
                phase_from = p;
            }
            Effect::Level { from, to } => d.audit(
                now,
                actor,
                "warning_level",
                &r.id,
                Some(from.as_str()),
                to.as_str(),
                &format!(
                    "alarm {} now {} (value {} vs {})",
                    r.rule,
                    to.as_str(),
                    messages::number(r.value),
                    messages::number(r.threshold)
                ),
            ),
            Effect::Ladder(t) => run_ladder(app, ctx, d, r, t, now),
        }
    }
}

fn run_ladder(
    app: &App,
    ctx: &mut Ctx,
    d: &mut Deferred,
    r: &mut Record,
    trigger: Trigger,
    now: i64,
) {
    if !matches!(trigger, Trigger::Closure { .. })
        && let Some(w) = crate::maintenance::covering(
            ctx.windows.as_deref().unwrap_or_default(),
            r.venue_id.as_deref(),
            &r.device,
            now,
        )
    {
        // Recorded and shown, not called out: no ladder step, no deadline
        // (the deadline watch would otherwise pick it up every tick).
        r.ladder.due_ms = None;
        d.hold(&r.id, Ok(&w.id), now);
        d.audit(
            now,
            "system:maintenance",
            "warning_call",
            &r.id,
            None,
            "HELD",
            &format!(
                "maintenance window {} until {}: {} — nobody is called until it ends",
                w.id,
                messages::time(default_lang(app), w.ends_ms),
                w.reason
            ),
        );
        app.metrics.warnings_held.inc();
        return;
    }
    if matches!(trigger, Trigger::Start)
        && let Some(&until) = ctx.settle.get(&r.id)
    {
        r.ladder.due_ms = None;
        d.hold(&r.id, Err(until), now);
        d.audit(
            now,
            "system:correlation",
            "warning_call",
            &r.id,
            None,
            "HELD",
            &format!(
                "first call waits until {} while other alarms of the same cause may arrive (one warning, one call per cause)",
                messages::time(default_lang(app), until)
            ),
        );
        return;
    }
    let level = match &trigger {
        Trigger::LevelUp(l) => *l,
        _ => r.w.max_level,
    };
    let policy = app.policies.get(level, r.venue_id.as_deref()).clone();
    let g = groups(&ctx.dir, &policy, r.venue_id.as_deref(), now);
    let sla = app.cfg.sla.ack_ms(level);
    let mut trigger = trigger;
    // A step whose every call is unreachable (nobody has an address the
    // channels can use) is failed at once; bounded by the chain's length.
    for _ in 0..policy.chain.len() + 3 {
        let history = ctx.history.entry(r.id.clone()).or_default().clone();
        let before = r.ladder;
        let plan = ladder::plan(r.ladder, &g, &history, &trigger, sla, now);
        r.ladder = plan.ladder;
        for n in &plan.notes {
            let (to, why) = match n {
                Note::NobodyAt(s) => ("NOBODY", format!("step {s}: nobody (left) to call in the policy's group; moving on")),
                Note::AllFailed(s) => ("FAILED", format!("step {s}: every call failed; calling the next step now")),
                Note::Missed(s) => ("MISSED", format!("step {s}: not acknowledged within the {} min SLA", sla / 60_000)),
                Note::Exhausted => ("EXHAUSTED", "the call chain is exhausted with no answer; the shift leader and the level above are told".to_string()),
            };
            d.audit(now, "system:ladder", "warning_call", &r.id, None, to, &why);
            if matches!(n, Note::Missed(_)) {
                app.metrics
                    .sla_breaches
                    .with_label_values(&[level.as_str()])
                    .inc();
            }
        }
        let queued = notify_all(app, ctx, d, r, &policy, &plan.notices, now);
        ctx.history
            .entry(r.id.clone())
            .or_default()
            .record(&plan.notices, now);
        let step = r.ladder.step;
        let called_now = plan
            .notices
            .iter()
            .any(|n| n.purpose == Purpose::Call && n.step == step);
        let reached_now = queued
            .iter()
            .any(|(n, ok)| *ok && n.purpose == Purpose::Call && n.step == step);
        if r.ladder != before && r.ladder.due_ms.is_some() && called_now && !reached_now {
            trigger = Trigger::StepFailed(step);
            continue;
        }
        break;
    }
}

/// Queues every notice; returns each with whether any channel took it.
fn notify_all(
    app: &App,
    ctx: &mut Ctx,
    d: &mut Deferred,
    r: &Record,
    policy: &Policy,
    notices: &[Notice],
    now: i64,
) -> Vec<(Notice, bool)> {
    let mut out = Vec::with_capacity(notices.len());
    let mut summary: Vec<String> = Vec::new();
    for n in notices {
        let ok = notify_one(app, ctx, d, r, policy, n, now, &mut summary);
        out.push((n.clone(), ok));
    }
    if !summary.is_empty() {
        d.audit(
            now,
            "system:ladder",
            "warning_call",
            &r.id,
            None,
            "NOTIFIED",
            &summary.join("; "),
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn notify_one(
    app: &App,
    ctx: &mut Ctx,
    d: &mut Deferred,
    r: &Record,
    policy: &Policy,
    n: &Notice,
    now: i64,
    summary: &mut Vec<String>,
) -> bool {
    let template = n.purpose.as_str();
    d.warning_call(&r.id, n, now);
    let Some(contact) = ctx.dir.contact(&n.person).cloned() else {
        app.metrics
            .notices_unreachable
            .with_label_values(&["not_registered"])
            .inc();
        d.audit(
            now,
            "system:notifier",
            "delivery",
            &r.id,
            None,
            "UNROUTABLE",
            &format!(
                "{} ({}): person {} is not in the registry",
                template, n.step, n.person
            ),
        );
        return false;
    };
    let via = if n.purpose.urgent() {
        &policy.call_via
    } else {
        &policy.inform_via
    };
    let usable = |list: Vec<(ChannelKind, String)>| -> Vec<(ChannelKind, String)> {
        list.into_iter()
            .filter(|(k, t)| app.notifier.can(*k, t, template))
            .collect()
    };
    let (wanted, mut fell_back) = contact.channels_for(via);
    let mut channels = usable(wanted);
    if channels.is_empty() && !fell_back {
        // The policy's kinds fit but none works here (not configured):
        // any other channel of the person's.
        channels = usable(contact.channels.clone());
        fell_back = !channels.is_empty();
    }
    if channels.is_empty() {
        app.metrics
            .notices_unreachable
            .with_label_values(&["no_channel"])
            .inc();
        d.audit(
            now,
            "system:notifier",
            "delivery",
            &r.id,
            None,
            "UNREACHABLE",
            &format!(
                "{} ({}): {} has no channel the monitor can use (channels: {:?})",
                template,
                n.step,
                n.person,
                contact
                    .channels
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
            ),
        );
        return false;
    }
    if fell_back {
        d.audit(
            now,
            "system:notifier",
            "delivery",
            &r.id,
            None,
            "FALLBACK",
            &format!(
                "{} ({}): {} has none of {:?}; sent by their other channels",
                template,
                n.step,
                n.person,
                via.iter().map(|k| k.as_str()).collect::<Vec<_>>()
            ),
        );
    }
    let lang = contact.lang.unwrap_or_else(|| default_lang(app));
    let grant = if n.purpose.asks_answer() {
        let sla = app.cfg.sla.ack_ms(r.w.max_level);
        let list = ctx.grants.entry(r.id.clone()).or_default();
        match list
            .iter()
            .find(|g| g.person_id == n.person && g.usable(now))
        {
            Some(g) => Some(g.clone()),
            None => {
                let g = Grant::new(&r.id, &n.person, now, crate::ack::ttl_ms(app, sla));
                d.grant(&g);
                list.push(g.clone());
                Some(g)
            }
        }
    } else {
        None
    };
    let by = r
        .acked_by
        .as_deref()
        .map(|p| {
            ctx.dir
                .contact(p)
                .map_or_else(|| p.to_string(), |c| c.name.clone())
        })
        .unwrap_or_default();
    let facts = facts(app, &ctx.dir, r, now, grant.as_ref(), by);
    let text = messages::warning(n.purpose, lang, &facts);
    let mut used = Vec::new();
    for (kind, target) in channels {
        let (body, params) = match kind {
            ChannelKind::Sms => (text.sms.clone(), Some(text.params.clone())),
            ChannelKind::Voice => (text.voice.clone(), Some(text.params.clone())),
            k if k.is_robot() => (
                text.body.clone(),
                Some(serde_json::json!({"_mention": contact.phone.clone().unwrap_or_default()})),
            ),
            _ => (text.body.clone(), None),
        };
        d.delivery(
            now,
            Draft {
                dedupe: format!(
                    "warning:{}:{}:{}:{}:{}:{}",
                    r.id,
                    template,
                    n.step,
                    n.person,
                    kind.as_str(),
                    target
                ),
                subject: "warning",
                subject_id: r.id.clone(),
                person: n.person.clone(),
                channel: kind,
                target,
                purpose: template.to_string(),
                template: template.to_string(),
                title: text.title.clone(),
                body,
                params,
                priority: Priority::warning(r.w.level.max(r.w.max_level), n.purpose.asks_answer()),
                step: Some(n.step),
            },
        );
        used.push(kind.as_str());
    }
    summary.push(format!(
        "{} {} (step {}) by {}",
        template,
        n.person,
        n.step,
        used.join(", ")
    ));
    true
}

/// What a notice about `r` says.
pub fn facts(
    app: &App,
    dir: &Directory,
    r: &Record,
    now: i64,
    grant: Option<&Grant>,
    by: String,
) -> Facts {
    let dev = dir.device(&r.device);
    Facts {
        level: Some(r.w.level.max(r.w.max_level)),
        venue: r
            .venue_id
            .as_deref()
            .and_then(|v| dir.venue(v))
            .map_or_else(|| r.site.clone(), |v| v.name.clone()),
        // A group warning names its members' count as the reading's value.
        device: if r.kind == crate::correlation::GROUP_KIND {
            String::new()
        } else {
            dev.and_then(|d| d.name.clone())
                .unwrap_or_else(|| r.device.clone())
        },
        location: dev.and_then(|d| d.location.clone()).unwrap_or_default(),
        registration: dev.and_then(|d| d.registration.clone()).unwrap_or_default(),
        kind: r.kind.clone(),
        rule: r.rule.clone(),
        value: r.value,
        threshold: r.threshold,
        raised_ms: r.raised_ms,
        due_ms: r.ladder.due_ms,
        now_ms: now,
        link: grant
            .and_then(|g| crate::ack::link(app, g))
            .unwrap_or_default(),
        code: grant.map(|g| g.code.clone()).unwrap_or_default(),
        by,
        false_alarm: r.false_alarm == Some(1),
        needs_ack: r.w.phase.awaits_ack(),
        step: r.ladder.step.max(0),
    }
}

/// Loads a warning for a change (locked until the commit on PostgreSQL).
pub async fn load(c: &mut AnyConnection, id: &str) -> Result<Record> {
    let lock = if c.backend_name().eq_ignore_ascii_case("sqlite") {
        ""
    } else {
        " FOR UPDATE"
    };
    let row = sqlx::query(&format!(
        "SELECT {RECORD_COLS} FROM warnings WHERE id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(&mut *c)
    .await?
    .ok_or(Error::NotFound {
        what: "warning",
        id: id.into(),
    })?;
    Record::from_row(&row)
}

/// How a person acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `POST /api/v1/warnings/{id}/ack`.
    Api,
    /// The dashboard's button.
    Web,
    /// The link in a message.
    Link,
    /// An SMS reply code.
    Sms,
    /// A key pressed during the voice call.
    Voice,
}

impl Via {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Web => "web",
            Self::Link => "link",
            Self::Sms => "sms",
            Self::Voice => "voice",
        }
    }
}

/// Every [`Via`] name.
pub const VIAS: [&str; 5] = ["api", "web", "link", "sms", "voice"];

/// Runs `input` on warning `id` inside `c` (whose transaction the caller
/// commits): the machine, its effects, the writes. `Ok(None)` when the
/// input changed nothing (a tick before the deadline, a second delivery).
pub async fn act_in(
    app: &App,
    c: &mut AnyConnection,
    id: &str,
    input: Input,
    actor: &str,
    via: Option<Via>,
    now: i64,
) -> Result<Option<Record>> {
    let mut r = load(c, id).await?;
    if input == Input::Tick && r.ladder.due_ms.is_none_or(|d| d > now) {
        return Ok(None);
    }
    let from = r.w.phase;
    let (next, fx) = machine::step(&r.w, &input, r.rules(app))
        .map_err(|e| Error::Conflict(format!("warning {id}: {e}")))?;
    if fx.is_empty() && next == r.w {
        return Ok(None);
    }
    match &input {
        Input::Ack { by } => {
            r.acked_ms = Some(now);
            r.acked_by = Some(by.clone());
            r.acked_via = via.map(|v| v.as_str().to_string());
            app.metrics
                .acks
                .with_label_values(&[via.map_or("api", Via::as_str)])
                .inc();
        }
        Input::Confirm { false_alarm } => r.false_alarm = Some(i64::from(*false_alarm)),
        _ => {}
    }
    r.w = next;
    let mut ctx = Ctx::default();
    if fx.iter().any(|e| matches!(e, Effect::Ladder(_))) {
        ctx.load(app, c, &[&r], now).await?;
    }
    let mut d = Deferred::default();
    apply(app, &mut ctx, &mut d, &mut r, from, fx, actor, now);
    d.warning(&r, now);
    d.flush(c).await?;
    Ok(Some(r))
}

/// The hold on `id`'s calls is over (a maintenance window ended or a storm
/// grouping's settle time passed; its hold row already deleted in `c`'s
/// transaction): a warning still waiting for an answer, active at the
/// source and not being called starts its ladder (or, called before a
/// window, gets a fresh deadline at its step); returns whether it did.
/// Another window in force holds it again.
pub async fn unhold(app: &App, c: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let mut r = load(c, id).await?;
    let mut d = Deferred::default();
    if !r.w.phase.awaits_ack() || r.w.cleared || r.ladder.due_ms.is_some() {
        // Answered, cleared or grouped meanwhile; or its ladder already
        // runs (a new highest level is called at once, held or not).
        d.audit(
            now,
            "system:maintenance",
            "warning_call",
            id,
            Some("HELD"),
            "RELEASED",
            "hold over; the alarm cleared, was answered, grouped or called meanwhile: nothing to start",
        );
        d.flush(c).await?;
        return Ok(false);
    }
    d.audit(
        now,
        "system:maintenance",
        "warning_call",
        id,
        Some("HELD"),
        "RELEASED",
        "hold over with the alarm still active and nobody called: calling",
    );
    let trigger = if r.ladder.step < 0 {
        Trigger::Start
    } else {
        Trigger::Resume
    };
    let mut ctx = Ctx::default();
    ctx.load(app, c, &[&r], now).await?;
    let phase = r.w.phase;
    apply(
        app,
        &mut ctx,
        &mut d,
        &mut r,
        phase,
        vec![Effect::Ladder(trigger)],
        "system:maintenance",
        now,
    );
    d.warning(&r, now);
    d.flush(c).await?;
    Ok(true)
}

/// [`act_in`] in its own transaction, then publishes the change.
pub async fn act(
    app: &App,
    id: &str,
    input: Input,
    actor: &str,
    via: Option<Via>,
) -> Result<Option<Record>> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    let r = act_in(app, &mut tx, id, input, actor, via, now).await?;
    tx.commit().await?;
    if r.is_some() {
        app.events.publish(Event::Warning(id.to_string()));
    }
    Ok(r)
}

async fn person_exists(c: &mut AnyConnection, person: &str) -> Result<()> {
    match sqlx::query("SELECT id FROM people WHERE id = $1")
        .bind(person)
        .fetch_optional(&mut *c)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(Error::Invalid(format!(
            "person {person:?} is not in the registry"
        ))),
    }
}

/// `POST /warnings/{id}/ack`: `person` acknowledges (叫应 answered).
pub async fn ack(app: &App, id: &str, person: &str, via: Via, note: &str) -> Result<()> {
    {
        let mut c = app.db.acquire().await?;
        person_exists(&mut c, person).await?;
    }
    let actor = format!("person:{person}");
    let r = act(
        app,
        id,
        Input::Ack {
            by: person.to_string(),
        },
        &actor,
        Some(via),
    )
    .await?;
    if r.is_some() && !note.is_empty() {
        let mut c = app.db.acquire().await?;
        db::audit(
            &mut c,
            app.now_ms(),
            &actor,
            "warning_note",
            id,
            None,
            "NOTE",
            note,
        )
        .await?;
    }
    Ok(())
}

/// What using a grant did.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantUse {
    /// Acknowledged by the grant's person.
    Acked(Record),
    /// The warning no longer waited for an answer: its state and who
    /// acknowledged it, if anyone.
    NotWaiting(Record),
}

/// Acknowledges with a grant (link, SMS code, voice key): the grant's
/// person, once. The grant is checked again and used inside the
/// transaction.
pub async fn ack_with_grant(
    app: &App,
    grant: &Grant,
    via: Via,
) -> Result<std::result::Result<GrantUse, crate::ack::Refusal>> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    if !crate::ack::consume(&mut tx, grant, now, via.as_str()).await? {
        let used = sqlx::query("SELECT used_ms FROM ack_grants WHERE id = $1")
            .bind(&grant.id)
            .fetch_optional(&mut *tx)
            .await?
            .and_then(|r| r.try_get::<Option<i64>, _>("used_ms").ok().flatten())
            .unwrap_or(now);
        return Ok(Err(crate::ack::Refusal::Used(used)));
    }
    let actor = format!("person:{}", grant.person_id);
    let out = match act_in(
        app,
        &mut tx,
        &grant.warning_id,
        Input::Ack {
            by: grant.person_id.clone(),
        },
        &actor,
        Some(via),
        now,
    )
    .await
    {
        Ok(Some(r)) => GrantUse::Acked(r),
        Ok(None) | Err(Error::Conflict(_)) => {
            GrantUse::NotWaiting(load(&mut tx, &grant.warning_id).await?)
        }
        Err(e) => return Err(e),
    };
    db::audit(
        &mut tx,
        now,
        &actor,
        "ack_grant",
        &grant.warning_id,
        None,
        via.as_str(),
        &format!(
            "{} used its acknowledgement {}",
            grant.person_id,
            via.as_str()
        ),
    )
    .await?;
    tx.commit().await?;
    app.events.publish(Event::Warning(grant.warning_id.clone()));
    Ok(Ok(out))
}

/// `POST /warnings/{id}/confirm`: after ACKED, a person judges it. A false
/// alarm is resolved; a real one goes DISPOSING with a disposal task
/// (deadline by level) assigned to `assignee` (default: whoever acked).
/// Returns the task id.
pub async fn confirm(
    app: &App,
    id: &str,
    person: &str,
    false_alarm: bool,
    assignee: Option<&str>,
    reason: &str,
) -> Result<Option<String>> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    person_exists(&mut tx, person).await?;
    let actor = format!("person:{person}");
    let r = act_in(
        app,
        &mut tx,
        id,
        Input::Confirm { false_alarm },
        &actor,
        None,
        now,
    )
    .await?
    .ok_or_else(|| Error::Conflict(format!("warning {id} did not change")))?;
    db::audit(
        &mut tx,
        now,
        &actor,
        "warning_note",
        id,
        None,
        "REASON",
        reason,
    )
    .await?;
    let mut task = None;
    if !false_alarm {
        // 重点风控 and recurrence count confirmed-real warnings only.
        if let Some(venue) = r.venue_id.as_deref() {
            crate::recurrence::on_confirmed_real(
                app,
                &mut tx,
                crate::recurrence::Confirmed {
                    id,
                    venue,
                    region: r.region_id.as_deref(),
                    rule: &r.rule,
                },
                now,
            )
            .await?;
        }
        let level = r.w.level;
        let assignee = assignee
            .map(str::to_string)
            .or(r.acked_by.clone())
            .unwrap_or_else(|| person.to_string());
        person_exists(&mut tx, &assignee).await?;
        task = Some(
            crate::work::create_task(
                &mut tx,
                now,
                &actor,
                crate::work::NewTask {
                    kind: "disposal".into(),
                    title: format!(
                        "处置 {}{} {}",
                        messages::level(Lang::Zh, level),
                        messages::reading(Lang::Zh, &r.rule),
                        r.device
                    ),
                    venue_id: r.venue_id.clone(),
                    region_id: r.region_id.clone(),
                    warning_id: Some(id.to_string()),
                    level: Some(level.as_str().to_string()),
                    assignee_id: Some(assignee),
                    due_ms: Some(now + app.cfg.tasks.deadline_ms(level)),
                },
            )
            .await?,
        );
    }
    tx.commit().await?;
    app.events.publish(Event::Warning(id.to_string()));
    Ok(task)
}

/// `POST /warnings/{id}/resolve`: DISPOSING → RESOLVED, when its disposal
/// tasks are done.
pub async fn resolve(app: &App, id: &str, person: &str, reason: &str) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    resolve_in(app, &mut tx, now, id, &format!("person:{person}"), reason).await?;
    tx.commit().await?;
    app.events.publish(Event::Warning(id.to_string()));
    Ok(())
}

/// Resolves inside a transaction (a disposal task just finished, or the
/// API), once no disposal task of it is open.
pub async fn resolve_in(
    app: &App,
    c: &mut AnyConnection,
    now: i64,
    id: &str,
    actor: &str,
    reason: &str,
) -> Result<()> {
    let open: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM tasks WHERE warning_id = $1 AND state <> 'DONE'")
            .bind(id)
            .fetch_one(&mut *c)
            .await?
            .try_get("n")?;
    if open > 0 {
        return Err(Error::Conflict(format!(
            "warning {id} has {open} disposal task(s) not DONE; finish them first"
        )));
    }
    act_in(app, c, id, Input::Resolve, actor, None, now).await?;
    db::audit(c, now, actor, "warning_note", id, None, "REASON", reason).await
}

/// The deadline watch (叫应): every warning waiting for an answer past its
/// deadline moves up its ladder, once (the row is locked on PostgreSQL and
/// the deadline checked again). Returns how many moved.
pub async fn tick(app: &App, now: i64) -> Result<usize> {
    let rows = sqlx::query(
        "SELECT id FROM warnings WHERE state IN ('RAISED', 'NOTIFIED') AND ack_due_ms IS NOT NULL \
         AND ack_due_ms <= $1 ORDER BY ack_due_ms LIMIT 200",
    )
    .bind(now)
    .fetch_all(&app.db)
    .await?;
    let mut moved = 0;
    for r in rows {
        let id: String = r.try_get("id")?;
        let mut tx = app.db.begin().await?;
        let done = act_in(app, &mut tx, &id, Input::Tick, "system:ladder", None, now).await?;
        tx.commit().await?;
        if done.is_some() {
            moved += 1;
            app.events.publish(Event::Warning(id));
        }
    }
    Ok(moved)
}

/// Routes what happened to the warnings' messages back to them: a call
/// that reached someone marks the warning NOTIFIED; when every call of the
/// current step failed for good, the ladder moves on at once.
pub async fn on_deliveries(app: &App, outcomes: &[crate::notify::Outcome]) -> Result<()> {
    for o in outcomes.iter().filter(|o| o.subject == "warning") {
        let input = if o.reached {
            if o.purpose != Purpose::Call.as_str() {
                continue;
            }
            Input::Delivered
        } else {
            let Some(step) = o.step else { continue };
            if !Purpose::parse(&o.purpose).is_some_and(Purpose::asks_answer) {
                continue;
            }
            let alive: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM deliveries WHERE subject_id = $1 AND purpose = 'call' AND step = $2 \
                 AND state NOT IN ('FAILED', 'UNDELIVERED')",
            )
            .bind(&o.subject_id)
            .bind(step)
            .fetch_one(&app.db)
            .await?
            .try_get("n")?;
            if alive > 0 {
                continue;
            }
            Input::StepFailed(step)
        };
        match act(app, &o.subject_id, input, "system:notifier", None).await {
            Ok(_) | Err(Error::Conflict(_)) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One rung of a warning's 叫应 ladder as the duty screen shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Rung {
    /// The person.
    pub person_id: String,
    /// Their name (empty when not in the registry).
    pub name: String,
    /// `call`, `inform`, `escalated`, `no_response`, `acked`, `cleared`,
    /// `disposal`, `resolved`.
    pub purpose: String,
    /// The ladder step (0 = the first calls).
    pub step: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Each channel and its delivery state (`sms:SENT`, `wecom:QUEUED`).
    pub channels: Vec<String>,
}

/// The ladder of `warning`: who was told what, when, by which channels.
pub async fn rungs(c: &mut AnyConnection, warning: &str) -> Result<Vec<Rung>> {
    Ok(rungs_of(c, &[warning.to_string()])
        .await?
        .remove(warning)
        .unwrap_or_default())
}

/// The ladders of `warnings` in three queries (the dashboard lists many).
pub async fn rungs_of(
    c: &mut AnyConnection,
    warnings: &[String],
) -> Result<HashMap<String, Vec<Rung>>> {
    let mut out: HashMap<String, Vec<Rung>> = HashMap::new();
    if warnings.is_empty() {
        return Ok(out);
    }
    let mut ids: Vec<String> = warnings.to_vec();
    ids.sort();
    ids.dedup();
    let n = ids.len().next_power_of_two();
    let marks = crate::intake::memo::marks(c, 1, n);
    let sql_calls = format!(
        "SELECT w.warning_id AS warning_id, w.person_id AS person_id, p.name AS name, w.purpose AS purpose, \
         w.step AS step, w.at_ms AS at_ms FROM warning_calls w LEFT JOIN people p ON p.id = w.person_id \
         WHERE w.warning_id IN ({marks}) ORDER BY w.at_ms, w.id"
    );
    let sql_deliveries = format!(
        "SELECT subject_id, person_id, purpose, step, channel, state FROM deliveries \
         WHERE subject_id IN ({marks}) ORDER BY created_ms, id"
    );
    let mut q = sqlx::query(&sql_calls);
    for i in 0..n {
        q = q.bind(ids[i.min(ids.len() - 1)].clone());
    }
    let calls = q.fetch_all(&mut *c).await?;
    let mut q = sqlx::query(&sql_deliveries);
    for i in 0..n {
        q = q.bind(ids[i.min(ids.len() - 1)].clone());
    }
    let deliveries = q.fetch_all(&mut *c).await?;
    type Key = (String, String, String, i64);
    let mut by: HashMap<Key, Vec<String>> = HashMap::new();
    for d in &deliveries {
        let Some(step) = d.try_get::<Option<i64>, _>("step")? else {
            continue;
        };
        by.entry((
            d.try_get("subject_id")?,
            d.try_get("person_id")?,
            d.try_get("purpose")?,
            step,
        ))
        .or_default()
        .push(format!(
            "{}:{}",
            d.try_get::<String, _>("channel")?,
            d.try_get::<String, _>("state")?
        ));
    }
    for r in calls {
        let key: Key = (
            r.try_get("warning_id")?,
            r.try_get("person_id")?,
            r.try_get("purpose")?,
            r.try_get("step")?,
        );
        let channels = by.get(&key).cloned().unwrap_or_default();
        out.entry(key.0.clone()).or_default().push(Rung {
            name: opt_str(&r, "name")?.unwrap_or_default(),
            person_id: key.1,
            purpose: key.2,
            step: key.3,
            at_ms: r.try_get("at_ms")?,
            channels,
        });
    }
    Ok(out)
}

/// A venue's dynamic state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VenueStatus {
    /// The venue.
    pub venue_id: String,
    /// `red`, `orange`, `yellow`, `blue` or `green`; `grey` when the
    /// venue's gateway is silent and nothing else colours it (never green
    /// while blind).
    pub color: &'static str,
    /// A gateway serving the venue's site missed two heartbeats: its
    /// readings and alarms are not arriving.
    pub no_data: bool,
    /// Warnings not resolved and not cleared at the source.
    pub active_warnings: i64,
    /// Open 一般 hazards.
    pub open_general_hazards: i64,
    /// Open 重大 hazards.
    pub open_major_hazards: i64,
    /// A hazard under interim control blocks operation (不得组织作业).
    pub operation_blocked: bool,
    /// On the 重点风控 list.
    pub key_risk: bool,
    /// A 重点风控 proposal waits for a decision.
    pub key_risk_proposed: bool,
}

/// The color rule: the highest level among active warnings; an open 重大
/// hazard is at least orange, an open hazard (any, incl. unjudged) at least
/// yellow; else green.
pub fn color(max_active: Option<Level>, major: i64, other: i64) -> &'static str {
    let mut lvl = max_active;
    let floor = if major > 0 {
        Some(Level::Orange)
    } else if other > 0 {
        Some(Level::Yellow)
    } else {
        None
    };
    lvl = match (lvl, floor) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    lvl.map_or("green", Level::as_str)
}

/// Computes a venue's status.
pub async fn venue_status(c: &mut AnyConnection, venue: &str) -> Result<VenueStatus> {
    let v = sqlx::query("SELECT key_risk, site FROM venues WHERE id = $1")
        .bind(venue)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound {
            what: "venue",
            id: venue.into(),
        })?;
    let key_risk: i64 = v.try_get("key_risk")?;
    let site: Option<String> = opt_str(&v, "site")?;
    let no_data = match &site {
        Some(s) => crate::liveness::site_blind(c, s).await?,
        None => false,
    };
    let rows = sqlx::query(
        "SELECT level FROM warnings WHERE venue_id = $1 AND state <> 'RESOLVED' AND clearable = 0",
    )
    .bind(venue)
    .fetch_all(&mut *c)
    .await?;
    let mut max: Option<Level> = None;
    for r in &rows {
        if let Some(l) = Level::parse(&r.try_get::<String, _>("level")?) {
            max = Some(max.map_or(l, |m| m.max(l)));
        }
    }
    let hz = sqlx::query("SELECT severity, state FROM hazards WHERE venue_id = $1 AND state NOT IN ('CLOSED', 'ARCHIVED')")
        .bind(venue)
        .fetch_all(&mut *c)
        .await?;
    let (mut major, mut general, mut blocked) = (0, 0, false);
    for h in &hz {
        if opt_str(h, "severity")?.as_deref() == Some("major") {
            major += 1;
        } else {
            general += 1;
        }
        blocked |= h.try_get::<String, _>("state")? == "INTERIM_CONTROL";
    }
    let proposed = sqlx::query(
        "SELECT state FROM key_risk_proposals WHERE venue_id = $1 AND state = 'PROPOSED'",
    )
    .bind(venue)
    .fetch_optional(&mut *c)
    .await?
    .is_some();
    Ok(VenueStatus {
        venue_id: venue.into(),
        color: match color(max, major, general) {
            "green" if no_data => "grey",
            c => c,
        },
        no_data,
        active_warnings: rows.len() as i64,
        open_general_hazards: general,
        open_major_hazards: major,
        operation_blocked: blocked,
        key_risk: key_risk != 0,
        key_risk_proposed: proposed,
    })
}

/// Decides a 重点风控 proposal.
pub async fn decide_key_risk(
    app: &App,
    venue: &str,
    person: &str,
    accept: bool,
    reason: &str,
) -> Result<()> {
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    person_exists(&mut tx, person).await?;
    let to = if accept { "ACCEPTED" } else { "REJECTED" };
    let n = sqlx::query(
        "UPDATE key_risk_proposals SET state = $1 WHERE venue_id = $2 AND state = 'PROPOSED'",
    )
    .bind(to)
    .bind(venue)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(Error::Conflict(format!(
            "no open 重点风控 proposal for venue {venue}"
        )));
    }
    if accept {
        sqlx::query("UPDATE venues SET key_risk = 1 WHERE id = $1")
            .bind(venue)
            .execute(&mut *tx)
            .await?;
    }
    db::audit(
        &mut tx,
        now,
        &format!("person:{person}"),
        "key_risk",
        venue,
        Some("PROPOSED"),
        to,
        reason,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// One warning with its events.
pub async fn get(c: &mut AnyConnection, id: &str) -> Result<WarningDetail> {
    let sql = format!("SELECT {} FROM warnings WHERE id = $1", Warning::select());
    let row = sqlx::query_as::<_, Warning>(&sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound {
            what: "warning",
            id: id.into(),
        })?;
    let events = sqlx::query_as::<_, WarningEvent>(&format!(
        "SELECT {} FROM alarm_events WHERE warning_id = $1 ORDER BY received_ms, event_id",
        WarningEvent::select()
    ))
    .bind(id)
    .fetch_all(&mut *c)
    .await?;
    Ok(WarningDetail {
        row,
        more: Events { events },
    })
}

/// Warnings, newest first, optionally in one state.
pub async fn list(c: &mut AnyConnection, state: Option<&str>) -> Result<Vec<Warning>> {
    if let Some(s) = state
        && machine::Phase::parse(s).is_none()
    {
        let all = machine::Phase::ALL.map(machine::Phase::as_str);
        return Err(Error::Invalid(format!(
            "state: unknown {s:?}; use one of {all:?}"
        )));
    }
    let sql = format!(
        "SELECT {} FROM warnings WHERE ($1 = '' OR state = $1) ORDER BY raised_ms DESC, id LIMIT 1000",
        Warning::select()
    );
    Ok(sqlx::query_as(&sql)
        .bind(state.unwrap_or(""))
        .fetch_all(&mut *c)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_rule() {
        assert_eq!(color(None, 0, 0), "green");
        assert_eq!(color(Some(Level::Blue), 0, 0), "blue");
        assert_eq!(color(Some(Level::Blue), 0, 1), "yellow");
        assert_eq!(color(None, 1, 0), "orange");
        assert_eq!(color(Some(Level::Red), 1, 0), "red");
        assert_eq!(color(Some(Level::Yellow), 2, 3), "orange");
    }
}
