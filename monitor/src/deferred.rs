//! Rows a change only appends or writes last (audit, alarm events,
//! deliveries, the ladder's history, grants, the warnings' new state) and
//! that nothing in it reads back: they are kept in memory and written with
//! one multi-row INSERT per table just before the transaction commits. With SQLite every statement is a
//! round trip to the connection's worker thread, and those round trips —
//! not SQLite itself — were most of the intake's time (perf: ~40 % in
//! futex wake-ups and context switches).

use sqlx::AnyConnection;

use crate::db;
use crate::error::Result;
use crate::policy::ChannelKind;

/// One bound value.
#[derive(Debug, Clone)]
enum Val {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Float(f64),
    /// Written into the SQL, not bound (constants such as `NULL`).
    Lit(&'static str),
}

/// A table's pending rows.
#[derive(Debug)]
struct Rows {
    head: &'static str,
    tail: &'static str,
    cols: usize,
    rows: Vec<Vec<Val>>,
}

impl Rows {
    const fn new(head: &'static str, tail: &'static str, cols: usize) -> Self {
        Self {
            head,
            tail,
            cols,
            rows: Vec::new(),
        }
    }

    /// The pending rows as INSERT statements with their values.
    /// PostgreSQL: chunks of at most 4 000 parameters (it allows 65 535),
    /// each statement numbered from `$1`. SQLite: the statements go
    /// together in one query with anonymous `?` parameters (sqlx binds them
    /// in order across the statements), in chunks of at most 240: SQLite
    /// looks up every `$name` among the statement's earlier ones and sqlx
    /// asks for every parameter's name, both quadratic in their number, so
    /// small statements with anonymous parameters cost far less than one
    /// large one.
    fn statements(&mut self, n: &mut usize, sqlite: bool) -> Vec<(String, Vec<Val>)> {
        let per = (if sqlite { 240 } else { 4000 } / self.cols).max(1);
        let restart = !sqlite;
        let rows = std::mem::take(&mut self.rows);
        let mut out = Vec::new();
        for chunk in rows.chunks(per) {
            if restart {
                *n = 0;
            }
            let mut sql = String::from(self.head);
            let mut vals = Vec::new();
            for (i, row) in chunk.iter().enumerate() {
                sql.push_str(if i == 0 { " (" } else { ", (" });
                for (j, v) in row.iter().enumerate() {
                    if j > 0 {
                        sql.push_str(", ");
                    }
                    if let Val::Lit(l) = v {
                        sql.push_str(l);
                    } else {
                        *n += 1;
                        if sqlite {
                            sql.push('?');
                        } else {
                            sql.push('$');
                            sql.push_str(&n.to_string());
                        }
                        vals.push(v.clone());
                    }
                }
                sql.push(')');
            }
            sql.push_str(self.tail);
            out.push((sql, vals));
        }
        out
    }
}

/// Runs `sql` with `vals` bound in order.
async fn run(c: &mut AnyConnection, sql: &str, vals: Vec<Val>) -> Result<()> {
    // Row counts vary: not worth a slot in the statement cache.
    let mut q = sqlx::query(sql).persistent(false);
    for v in vals {
        q = match v {
            Val::Text(s) => q.bind(s),
            Val::OptText(s) => q.bind(s),
            Val::Int(i) => q.bind(i),
            Val::OptInt(i) => q.bind(i),
            Val::Float(f) => q.bind(f),
            Val::Lit(_) => q,
        };
    }
    q.execute(&mut *c).await?;
    Ok(())
}

/// The pending rows of one batch (or one event, or one warning change).
#[derive(Debug)]
pub struct Deferred {
    warnings: Rows,
    /// Changed warnings, written before the new ones (a warning resolved
    /// in the batch frees its alarm for a new one): see [`UPDATE_COLS`].
    warning_updates: Vec<Vec<Val>>,
    audit: Rows,
    events: Rows,
    deliveries: Rows,
    calls: Rows,
    grants: Rows,
    holds: Rows,
    members: Rows,
}

/// The columns a warning change writes (then `id`).
pub const UPDATE_COLS: [&str; 14] = [
    "state",
    "level",
    "max_level",
    "clearable",
    "ladder_step",
    "ack_due_ms",
    "value",
    "threshold",
    "acked_ms",
    "acked_by",
    "acked_via",
    "false_alarm",
    "resolved_ms",
    "updated_ms",
];

/// The UPDATE of a warning's [`UPDATE_COLS`] by id, its placeholders
/// `$(n + 1)` on, or anonymous `?` for SQLite's multi-statement batch.
fn update_sql(anonymous: bool, n: usize) -> String {
    let mut sql = String::from("UPDATE warnings SET ");
    for (i, c) in UPDATE_COLS.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        if anonymous {
            sql.push_str(&format!("{c} = ?"));
        } else {
            sql.push_str(&format!("{c} = ${}", n + i + 1));
        }
    }
    if anonymous {
        sql.push_str(" WHERE id = ?");
    } else {
        sql.push_str(&format!(" WHERE id = ${}", n + UPDATE_COLS.len() + 1));
    }
    sql
}

impl Default for Deferred {
    fn default() -> Self {
        Self {
            warnings: Rows::new(
                "INSERT INTO warnings (id, alarm_key, venue_id, region_id, site, device, kind, rule, level, \
                 max_level, state, clearable, false_alarm, raised_ms, acked_ms, acked_by, resolved_ms, \
                 ladder_step, ack_due_ms, updated_ms, value, threshold, acked_via) VALUES",
                "",
                23,
            ),
            warning_updates: Vec::new(),
            audit: Rows::new(
                "INSERT INTO audit (id, at_ms, actor, entity, entity_id, from_state, to_state, reason) VALUES",
                "",
                8,
            ),
            events: Rows::new(
                "INSERT INTO alarm_events (event_id, warning_id, site, device, kind, rule, level, state, \
                 value, threshold, ts_ms, gateway, received_ms) VALUES",
                "",
                13,
            ),
            deliveries: Rows::new(
                "INSERT INTO deliveries (id, dedupe, subject, subject_id, person_id, channel, target, purpose, \
                 title, body, state, attempts, next_ms, lease_until, lease_owner, last_error, created_ms, sent_ms, \
                 priority, step, params, out_id, template) VALUES",
                " ON CONFLICT (dedupe) DO NOTHING",
                23,
            ),
            calls: Rows::new(
                "INSERT INTO warning_calls (id, warning_id, person_id, purpose, step, at_ms) VALUES",
                " ON CONFLICT (warning_id, person_id, purpose, step) DO NOTHING",
                6,
            ),
            grants: Rows::new(
                "INSERT INTO ack_grants (id, warning_id, person_id, code, issued_ms, expires_ms, used_ms, used_via) VALUES",
                "",
                8,
            ),
            members: Rows::new(
                "INSERT INTO warning_members (group_id, alarm_key, device, rule, level, joined_ms, left_ms, left_why) VALUES",
                " ON CONFLICT (group_id, alarm_key) DO UPDATE SET level = excluded.level, joined_ms = excluded.joined_ms, \
                 left_ms = excluded.left_ms, left_why = excluded.left_why",
                8,
            ),
            holds: Rows::new(
                "INSERT INTO maintenance_holds (warning_id, window_id, until_ms, held_ms) VALUES",
                " ON CONFLICT (warning_id) DO NOTHING",
                4,
            ),
        }
    }
}

impl Deferred {
    /// A warning's state: an INSERT for a new one (not written before in
    /// this transaction), else an UPDATE of its changeable columns.
    /// Written without `ON CONFLICT`: another replica opening the same
    /// alarm meanwhile fails the batch, which is then taken again event by
    /// event.
    pub fn warning(&mut self, r: &crate::warnings::Record, now_ms: i64) {
        if r.new {
            self.warnings.rows.push(vec![
                Val::Text(r.id.clone()),
                Val::Text(r.alarm_key.clone()),
                Val::OptText(r.venue_id.clone()),
                Val::OptText(r.region_id.clone()),
                Val::Text(r.site.clone()),
                Val::Text(r.device.clone()),
                Val::Text(r.kind.clone()),
                Val::Text(r.rule.clone()),
                Val::Text(r.w.level.as_str().into()),
                Val::Text(r.w.max_level.as_str().into()),
                Val::Text(r.w.phase.as_str().into()),
                Val::Int(i64::from(r.w.cleared)),
                Val::OptInt(r.false_alarm),
                Val::Int(r.raised_ms),
                Val::OptInt(r.acked_ms),
                Val::OptText(r.acked_by.clone()),
                Val::OptInt(r.resolved_ms),
                Val::Int(r.ladder.step),
                Val::OptInt(r.ladder.due_ms),
                Val::Int(now_ms),
                Val::Float(r.value),
                Val::Float(r.threshold),
                Val::OptText(r.acked_via.clone()),
            ]);
            return;
        }
        self.warning_updates.push(vec![
            Val::Text(r.w.phase.as_str().into()),
            Val::Text(r.w.level.as_str().into()),
            Val::Text(r.w.max_level.as_str().into()),
            Val::Int(i64::from(r.w.cleared)),
            Val::Int(r.ladder.step),
            Val::OptInt(r.ladder.due_ms),
            Val::Float(r.value),
            Val::Float(r.threshold),
            Val::OptInt(r.acked_ms),
            Val::OptText(r.acked_by.clone()),
            Val::OptText(r.acked_via.clone()),
            Val::OptInt(r.false_alarm),
            Val::OptInt(r.resolved_ms),
            Val::Int(now_ms),
            Val::Text(r.id.clone()),
        ]);
    }

    /// An audit row, as [`db::audit`] writes it (its id taken now, so the
    /// order of the rows is the order of the calls).
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        &mut self,
        now_ms: i64,
        actor: &str,
        entity: &str,
        entity_id: &str,
        from: Option<&str>,
        to: &str,
        why: &str,
    ) {
        self.audit.rows.push(vec![
            Val::Text(db::seq_id(now_ms)),
            Val::Int(now_ms),
            Val::Text(actor.into()),
            Val::Text(entity.into()),
            Val::Text(entity_id.into()),
            Val::OptText(from.map(str::to_string)),
            Val::Text(to.into()),
            Val::Text(why.into()),
        ]);
    }

    /// An alarm event row. Written without `ON CONFLICT`: a row already
    /// there (another replica took the same event meanwhile) fails the
    /// batch, which is then taken again event by event.
    pub fn event(
        &mut self,
        ev: &anquan_protocol::AlarmEvent,
        warning_id: Option<&str>,
        now_ms: i64,
    ) {
        self.events.rows.push(vec![
            Val::Text(ev.event_id.as_str().into()),
            Val::OptText(warning_id.map(str::to_string)),
            Val::Text(ev.site.as_str().into()),
            Val::Text(ev.device.as_str().into()),
            Val::Text(ev.kind.to_string()),
            Val::Text(ev.rule.as_str().into()),
            Val::Text(ev.level.as_str().into()),
            Val::Text(ev.state.as_str().into()),
            Val::Float(f64::from(ev.value)),
            Val::Float(f64::from(ev.threshold)),
            Val::Int(i64::try_from(ev.ts_ms).unwrap_or(i64::MAX)),
            Val::Text(ev.gateway.as_str().into()),
            Val::Int(now_ms),
        ]);
    }

    /// A QUEUED delivery row.
    pub fn delivery(&mut self, now_ms: i64, d: crate::notify::Draft) {
        self.deliveries.rows.push(vec![
            Val::Text(db::seq_id(now_ms)),
            Val::Text(d.dedupe),
            Val::Text(d.subject.into()),
            Val::Text(d.subject_id),
            Val::Text(d.person),
            Val::Text(d.channel.as_str().into()),
            Val::Text(d.target),
            Val::Text(d.purpose),
            Val::Text(d.title),
            Val::Text(d.body),
            Val::Lit("'QUEUED'"),
            Val::Lit("0"),
            Val::Int(now_ms),
            Val::Lit("0"),
            Val::Lit("NULL"),
            Val::Lit("NULL"),
            Val::Int(now_ms),
            Val::Lit("NULL"),
            Val::Int(d.priority.value()),
            Val::OptInt(d.step),
            Val::OptText(d.params.map(|p| p.to_string())),
            // Only the channels whose receipts name it (SMS, voice).
            Val::OptText(
                matches!(d.channel, ChannelKind::Sms | ChannelKind::Voice)
                    .then(crate::notify::out_id),
            ),
            Val::Text(d.template),
        ]);
    }

    /// A notice given about a warning (its ladder's history).
    pub fn warning_call(
        &mut self,
        warning: &str,
        n: &crate::warnings::ladder::Notice,
        now_ms: i64,
    ) {
        self.calls.rows.push(vec![
            Val::Text(db::seq_id(now_ms)),
            Val::Text(warning.into()),
            Val::Text(n.person.clone()),
            Val::Text(n.purpose.as_str().into()),
            Val::Int(n.step),
            Val::Int(now_ms),
        ]);
    }

    /// An acknowledgement grant.
    pub fn grant(&mut self, g: &crate::ack::Grant) {
        self.grants.rows.push(vec![
            Val::Text(g.id.clone()),
            Val::Text(g.warning_id.clone()),
            Val::Text(g.person_id.clone()),
            Val::Text(g.code.clone()),
            Val::Int(g.issued_ms),
            Val::Int(g.expires_ms),
            Val::Lit("NULL"),
            Val::Lit("NULL"),
        ]);
    }

    /// A warning's first calls held back: by a maintenance window
    /// (`Ok(window)`, until it is over) or while a storm may still group
    /// it (`Err(until_ms)`). Kept as it was when already held.
    pub fn hold(&mut self, warning: &str, by: std::result::Result<&str, i64>, now_ms: i64) {
        let (window, until) = match by {
            Ok(w) => (Some(w.to_string()), None),
            Err(t) => (None, Some(t)),
        };
        self.holds.rows.push(vec![
            Val::Text(warning.into()),
            Val::OptText(window),
            Val::OptInt(until),
            Val::Int(now_ms),
        ]);
    }

    /// A group membership's state ([`crate::correlation`]).
    pub fn member(&mut self, key: &str, m: &crate::intake::memo::Member) {
        self.members.rows.push(vec![
            Val::Text(m.group_id.clone()),
            Val::Text(key.into()),
            Val::Text(m.device.clone()),
            Val::Text(m.rule.clone()),
            Val::Text(m.level.as_str().into()),
            Val::Int(m.joined_ms),
            Val::OptInt(m.left.map(|l| l.0)),
            Val::OptText(m.left.map(|l| l.1.to_string())),
        ]);
    }

    /// Writes everything pending, in the transaction `c`. On SQLite the
    /// statements go as one multi-statement query (one round trip; its
    /// `$n` are numbered across the statements), up to 30 000 parameters;
    /// PostgreSQL takes one statement per query.
    pub async fn flush(&mut self, c: &mut AnyConnection) -> Result<()> {
        let sqlite = c.backend_name().eq_ignore_ascii_case("sqlite");
        let mut n = 0;
        let mut all = Vec::new();
        for vals in std::mem::take(&mut self.warning_updates) {
            if !sqlite {
                n = 0;
            }
            let sql = update_sql(sqlite, n);
            n += vals.len();
            all.push((sql, vals));
        }
        all.extend(self.warnings.statements(&mut n, sqlite));
        for t in [
            &mut self.audit,
            &mut self.events,
            &mut self.deliveries,
            &mut self.calls,
            &mut self.grants,
            &mut self.holds,
            &mut self.members,
        ] {
            all.extend(t.statements(&mut n, sqlite));
        }
        if all.is_empty() {
            return Ok(());
        }
        if sqlite && n <= 30_000 {
            let mut sql = String::new();
            let mut vals = Vec::new();
            for (s, v) in all {
                sql.push_str(&s);
                sql.push_str(";\n");
                vals.extend(v);
            }
            return run(c, &sql, vals).await;
        }
        if sqlite {
            // Too many for one query: number each statement from $1.
            return Err(crate::Error::Unavailable(
                "intake batch too large to write in one query".into(),
            ));
        }
        for (s, v) in all {
            run(c, &s, v).await?;
        }
        Ok(())
    }
}
