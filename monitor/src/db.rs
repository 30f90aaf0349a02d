//! Storage through sqlx's `Any` driver: the same migrations
//! (`monitor/migrations`) and the same SQL run on SQLite and PostgreSQL.
//! SQL uses `$n` placeholders (both engines accept them), BIGINT ms times
//! and TEXT ids.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool};
use std::str::FromStr;

use crate::error::{Error, Result};

/// The migrations, embedded in the binary (the same files for both engines).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (
        2,
        "task_templates",
        include_str!("../migrations/0002_task_templates.sql"),
    ),
    (3, "listing", include_str!("../migrations/0003_listing.sql")),
    (4, "web", include_str!("../migrations/0004_web.sql")),
    (
        5,
        "evidence",
        include_str!("../migrations/0005_evidence.sql"),
    ),
    (
        6,
        "report_snapshots",
        include_str!("../migrations/0006_report_snapshots.sql"),
    ),
    (
        7,
        "event_scope",
        include_str!("../migrations/0007_event_scope.sql"),
    ),
    (
        8,
        "public_reports",
        include_str!("../migrations/0008_public_reports.sql"),
    ),
    (
        9,
        "last_mile",
        include_str!("../migrations/0009_last_mile.sql"),
    ),
    (
        10,
        "gateway_liveness",
        include_str!("../migrations/0010_gateway_liveness.sql"),
    ),
    (
        11,
        "api_tokens",
        include_str!("../migrations/0011_api_tokens.sql"),
    ),
    (
        12,
        "maintenance",
        include_str!("../migrations/0012_maintenance.sql"),
    ),
    (
        13,
        "digests",
        include_str!("../migrations/0013_digests.sql"),
    ),
];

/// The migrator over [`MIGRATIONS`].
pub fn migrator() -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|&(v, d, sql)| Migration::new(v, d.into(), MigrationType::Simple, sql.into(), false))
        .collect();
    Migrator {
        migrations: migrations.into(),
        ..Migrator::DEFAULT
    }
}

/// Opens (creating the SQLite file when `mode=rwc`) and migrates.
pub async fn connect(url: &str, max_connections: u32) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let opts = AnyConnectOptions::from_str(url)?;
    let sqlite = url.starts_with("sqlite:");
    // SQLite takes one writer at a time; one connection avoids "database is
    // locked" between our own transactions. WAL: one fsync per commit,
    // readers never block; synchronous stays FULL (an answered alarm is on
    // disk).
    let pool = if sqlite {
        AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA synchronous = FULL")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?
    } else {
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect_with(opts)
            .await?
    };
    migrator().run(&pool).await?;
    Ok(pool)
}

/// A new id.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An id that sorts by time, then by order of writing within this process
/// (several rows share a millisecond): audit rows, deliveries.
pub fn seq_id(now_ms: i64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let u = uuid::Uuid::new_v4().simple().to_string();
    format!("{now_ms:015}-{n:012}-{}", &u[..8])
}

/// Appends an audit row: `actor` moved `entity` `entity_id` from `from` to
/// `to` because `why`.
#[allow(clippy::too_many_arguments)]
pub async fn audit(
    conn: &mut AnyConnection,
    now_ms: i64,
    actor: &str,
    entity: &str,
    entity_id: &str,
    from: Option<&str>,
    to: &str,
    why: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (id, at_ms, actor, entity, entity_id, from_state, to_state, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(seq_id(now_ms))
    .bind(now_ms)
    .bind(actor)
    .bind(entity)
    .bind(entity_id)
    .bind(from.map(str::to_string))
    .bind(to)
    .bind(why)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A state machine: its table and allowed edges.
#[derive(Debug)]
pub struct Machine {
    /// The audit entity name.
    pub entity: &'static str,
    /// The table (with `id`, `state`, `updated_ms` columns).
    pub table: &'static str,
    /// Allowed `(from, to)` edges.
    pub edges: &'static [(&'static str, &'static str)],
}

impl Machine {
    /// Whether `from → to` is allowed.
    pub fn allows(&self, from: &str, to: &str) -> bool {
        self.edges.iter().any(|&(f, t)| f == from && t == to)
    }

    /// Where one can go from `from`.
    pub fn next(&self, from: &str) -> Vec<&'static str> {
        self.edges
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, t)| *t)
            .collect()
    }

    /// Moves row `id` from `from` to `to` (compare-and-set on the state, so
    /// a concurrent change makes this fail instead of overwriting it) and
    /// appends the audit row.
    #[allow(clippy::too_many_arguments)]
    pub async fn transition(
        &self,
        conn: &mut AnyConnection,
        now_ms: i64,
        id: &str,
        from: &str,
        to: &str,
        actor: &str,
        why: &str,
    ) -> Result<()> {
        if !self.allows(from, to) {
            return Err(Error::Conflict(format!(
                "{} {id} is {from}; it cannot go to {to} (allowed: {:?})",
                self.entity,
                self.next(from)
            )));
        }
        let sql = format!(
            "UPDATE {} SET state = $1, updated_ms = $2 WHERE id = $3 AND state = $4",
            self.table
        );
        let n = sqlx::query(&sql)
            .bind(to)
            .bind(now_ms)
            .bind(id)
            .bind(from)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if n != 1 {
            return Err(Error::Conflict(format!(
                "{} {id} changed meanwhile; reload and retry",
                self.entity
            )));
        }
        audit(conn, now_ms, actor, self.entity, id, Some(from), to, why).await
    }
}

/// Task: PLANNED → ASSIGNED → IN_PROGRESS → SUBMITTED → REVIEWED → DONE, or
/// OVERDUE.
pub const TASK: Machine = Machine {
    entity: "task",
    table: "tasks",
    edges: &[
        ("PLANNED", "ASSIGNED"),
        ("ASSIGNED", "IN_PROGRESS"),
        ("IN_PROGRESS", "SUBMITTED"),
        ("SUBMITTED", "REVIEWED"),
        ("SUBMITTED", "IN_PROGRESS"),
        ("REVIEWED", "DONE"),
        ("PLANNED", "OVERDUE"),
        ("ASSIGNED", "OVERDUE"),
        ("IN_PROGRESS", "OVERDUE"),
        ("OVERDUE", "IN_PROGRESS"),
        ("OVERDUE", "SUBMITTED"),
    ],
};

/// Hazard: DETECTED → JUDGED → FILED → RECTIFYING → VERIFYING → CLOSED →
/// ARCHIVED, with the fast path, interim control and reopening.
pub const HAZARD: Machine = Machine {
    entity: "hazard",
    table: "hazards",
    edges: &[
        ("DETECTED", "JUDGED"),
        ("DETECTED", "VERIFYING"),
        ("JUDGED", "FILED"),
        ("FILED", "RECTIFYING"),
        ("RECTIFYING", "VERIFYING"),
        ("RECTIFYING", "INTERIM_CONTROL"),
        ("INTERIM_CONTROL", "RECTIFYING"),
        ("VERIFYING", "RECTIFYING"),
        ("VERIFYING", "CLOSED"),
        ("CLOSED", "ARCHIVED"),
        ("CLOSED", "REOPENED"),
        ("ARCHIVED", "REOPENED"),
        ("REOPENED", "RECTIFYING"),
    ],
};

/// Reads one optional string column.
pub fn opt_str(row: &sqlx::any::AnyRow, col: &str) -> Result<Option<String>> {
    use sqlx::Row;
    Ok(row.try_get::<Option<String>, _>(col)?)
}

/// A row type read straight from the database: its columns (the names of
/// its fields, in order) and its decoder. Declared with [`row!`], which
/// makes the struct, the column list and the decoder from one field list.
pub trait Columns: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin {
    /// The columns, in the order of the fields.
    const COLS: &'static [&'static str];

    /// The columns as a `SELECT` list.
    fn select() -> String {
        Self::COLS.join(", ")
    }
}

/// Declares a struct whose fields are columns, with its [`Columns`] and
/// `sqlx::FromRow` (each field decoded from the column of its name: `i64`
/// for integers, `f64` for `DOUBLE PRECISION`, `String`, `Option` of those
/// where the column takes null). The derives (`Serialize`, `ToSchema`) are
/// the caller's.
macro_rules! row {
    ($(#[$m:meta])* $vis:vis struct $name:ident {
        $($(#[$fm:meta])* $fvis:vis $field:ident: $ty:ty),* $(,)?
    }) => {
        $(#[$m])*
        $vis struct $name {
            $($(#[$fm])* $fvis $field: $ty),*
        }

        impl $crate::db::Columns for $name {
            const COLS: &'static [&'static str] = &[$(stringify!($field)),*];
        }

        impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for $name {
            fn from_row(row: &'r sqlx::any::AnyRow) -> sqlx::Result<Self> {
                use sqlx::Row as _;
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?),*
                })
            }
        }
    };
}
pub(crate) use row;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "{files:?}");
        for (i, (f, &(v, d, _))) in files.iter().zip(MIGRATIONS).enumerate() {
            assert_eq!(v, i as i64 + 1);
            assert_eq!(f, &format!("{v:04}_{d}.sql"));
        }
    }

    #[test]
    fn machines_allow_only_their_edges() {
        assert!(TASK.allows("IN_PROGRESS", "OVERDUE"));
        assert!(!TASK.allows("DONE", "IN_PROGRESS"));
        assert!(HAZARD.allows("DETECTED", "VERIFYING"));
        assert!(!HAZARD.allows("DETECTED", "CLOSED"));
        assert_eq!(HAZARD.next("CLOSED"), ["ARCHIVED", "REOPENED"]);
    }
}
