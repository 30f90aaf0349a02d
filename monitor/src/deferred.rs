//! Rows an intake batch only appends (audit, alarm events, deliveries) and
//! that nothing in the batch reads back: they are kept in memory and
//! written with one multi-row INSERT per table just before the batch
//! commits, inside the same transaction. With SQLite every statement is a
//! round trip to the connection's worker thread, and those round trips —
//! not SQLite itself — were most of the intake's time (perf: ~40 % in
//! futex wake-ups and context switches).

use sqlx::AnyConnection;

use crate::db;
use crate::error::Result;

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

/// The pending rows of one batch (or one event).
#[derive(Debug)]
pub struct Deferred {
    warnings: Rows,
    /// Changed warnings: level, max_level, clearable, ack_due_ms,
    /// updated_ms, id (see [`crate::intake::memo::update_sql`]).
    warning_updates: Vec<Vec<Val>>,
    audit: Rows,
    events: Rows,
    deliveries: Rows,
}

impl Default for Deferred {
    fn default() -> Self {
        Self {
            warnings: Rows::new(
                "INSERT INTO warnings (id, alarm_key, venue_id, region_id, site, device, kind, rule, level, \
                 max_level, state, clearable, false_alarm, raised_ms, acked_ms, acked_by, resolved_ms, \
                 notify_rank, ack_due_ms, updated_ms) VALUES",
                "",
                20,
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
                 title, body, state, attempts, next_ms, lease_until, lease_owner, last_error, created_ms, sent_ms) VALUES",
                " ON CONFLICT (dedupe) DO NOTHING",
                18,
            ),
        }
    }
}

impl Deferred {
    /// A new RAISED warning (see [`crate::intake::memo::Memo::insert`]).
    /// Written without `ON CONFLICT`: another replica opening the same
    /// alarm meanwhile fails the batch, which is then taken again event by
    /// event.
    pub fn warning(
        &mut self,
        key: &str,
        ev: &anquan_protocol::AlarmEvent,
        w: &crate::intake::memo::Open,
        now_ms: i64,
    ) {
        self.warnings.rows.push(vec![
            Val::Text(w.id.clone()),
            Val::Text(key.into()),
            Val::OptText(w.venue_id.clone()),
            Val::OptText(w.region_id.clone()),
            Val::Text(ev.site.as_str().into()),
            Val::Text(ev.device.as_str().into()),
            Val::Text(ev.kind.to_string()),
            Val::Text(ev.rule.as_str().into()),
            Val::Text(w.level.as_str().into()),
            Val::Text(w.max_level.as_str().into()),
            Val::Lit("'RAISED'"),
            Val::Lit("0"),
            Val::Lit("NULL"),
            Val::Int(now_ms),
            Val::Lit("NULL"),
            Val::Lit("NULL"),
            Val::Lit("NULL"),
            Val::Lit("0"),
            Val::OptInt(w.ack_due_ms),
            Val::Int(now_ms),
        ]);
    }

    /// The newest state of a warning the batch changed (written after the
    /// batch's new warnings).
    pub fn warning_update(&mut self, w: &crate::intake::memo::Open, now_ms: i64) {
        self.warning_updates.push(vec![
            Val::Text(w.level.as_str().into()),
            Val::Text(w.max_level.as_str().into()),
            Val::Int(i64::from(w.clearable)),
            Val::OptInt(w.ack_due_ms),
            Val::Int(now_ms),
            Val::Text(w.id.clone()),
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

    /// A QUEUED delivery row, as [`crate::notify::queue`] writes it
    /// (`dedupe` already carries the channel).
    #[allow(clippy::too_many_arguments)]
    pub fn delivery(
        &mut self,
        now_ms: i64,
        dedupe: String,
        subject: &str,
        subject_id: &str,
        person: &str,
        channel: &str,
        target: String,
        purpose: &str,
        title: &str,
        body: &str,
    ) {
        self.deliveries.rows.push(vec![
            Val::Text(db::seq_id(now_ms)),
            Val::Text(dedupe),
            Val::Text(subject.into()),
            Val::Text(subject_id.into()),
            Val::Text(person.into()),
            Val::Text(channel.into()),
            Val::Text(target),
            Val::Text(purpose.into()),
            Val::Text(title.into()),
            Val::Text(body.into()),
            Val::Lit("'QUEUED'"),
            Val::Lit("0"),
            Val::Int(now_ms),
            Val::Lit("0"),
            Val::Lit("NULL"),
            Val::Lit("NULL"),
            Val::Int(now_ms),
            Val::Lit("NULL"),
        ]);
    }

    /// Writes everything pending, in the transaction `c`. On SQLite the
    /// statements go as one multi-statement query (one round trip; its
    /// `$n` are numbered across the statements), up to 30 000 parameters;
    /// PostgreSQL takes one statement per query.
    pub async fn flush(&mut self, c: &mut AnyConnection) -> Result<()> {
        let sqlite = c.backend_name().eq_ignore_ascii_case("sqlite");
        let mut n = 0;
        let mut all = self.warnings.statements(&mut n, sqlite);
        for vals in std::mem::take(&mut self.warning_updates) {
            if !sqlite {
                n = 0;
            }
            let sql = crate::intake::memo::update_sql(sqlite, n);
            n += vals.len();
            all.push((sql, vals));
        }
        for t in [&mut self.audit, &mut self.events, &mut self.deliveries] {
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
