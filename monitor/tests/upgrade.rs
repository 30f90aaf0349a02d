//! Upgrades: the migrations are forward-only (a released migration is never
//! edited), and a database written by the previous release, through its own
//! API, opens with this one: the pending migrations apply, the data stays
//! usable (idempotency, lifecycles, reports, the new web accounts).
//!
//! The fixture `tests/fixtures/release-0.1.0.db` was written by the
//! release's binary with `tests/fixtures/make-release-db.sh` (see there);
//! for PostgreSQL, the released migrations are applied and the same rows
//! (`release-0.1.0.sql`) inserted, then this release starts on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use anquan_monitor::{App, Config, clock::SystemClock, db, http};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const RELEASED: &str = include_str!("../migrations/RELEASED");

/// Every migration named in `migrations/RELEASED` still has the checksum it
/// was released with, and is still embedded under the same version.
#[test]
fn released_migrations_are_never_edited() {
    let mut n = 0;
    for line in RELEASED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (sum, file) = line.split_once("  ").unwrap();
        let path = format!("{}/migrations/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            hex::encode(Sha256::digest(&text)),
            sum,
            "{file} was edited after its release: add a new migration instead"
        );
        let version: i64 = file[..4].parse().unwrap();
        assert!(
            db::MIGRATIONS
                .iter()
                .any(|&(v, _, sql)| v == version && sql.as_bytes() == text.as_slice()),
            "{file} is not embedded as version {version}"
        );
        n += 1;
    }
    assert!(n >= 3, "RELEASED lists {n} migrations");
}

struct Upgraded {
    base: String,
    app: App,
    http: reqwest::Client,
    op: String,
    gw: String,
    _dir: tempfile::TempDir,
}

impl Upgraded {
    /// This release on the previous release's SQLite file.
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("monitor.db");
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/release-0.1.0.db"
            ),
            &db,
        )
        .unwrap();
        Self::start(&format!("sqlite://{}?mode=rwc", db.display()), dir).await
    }

    /// This release on a PostgreSQL database at the released schema with
    /// the release's rows.
    async fn postgres(pg: &common::pg::Pg) -> Self {
        use sqlx::Connection;
        use sqlx::migrate::{Migration, MigrationType, Migrator};
        let url = pg.database("upgrade").await;
        let released: Vec<Migration> = db::MIGRATIONS
            .iter()
            .filter(|(v, _, _)| RELEASED.contains(&format!("  {v:04}_")))
            .map(|&(v, d, sql)| {
                Migration::new(v, d.into(), MigrationType::Simple, sql.into(), false)
            })
            .collect();
        assert!(released.len() >= 3);
        let old = Migrator {
            migrations: released.into(),
            ..Migrator::DEFAULT
        };
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        old.run(&mut c).await.unwrap();
        let rows = include_str!("fixtures/release-0.1.0.sql");
        sqlx::raw_sql(rows).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
        Self::start(&url, tempfile::tempdir().unwrap()).await
    }

    async fn start(url: &str, dir: tempfile::TempDir) -> Self {
        let text = include_str!("../monitor.example.toml")
            .replace("listen = \"127.0.0.1:8088\"", "listen = \"127.0.0.1:0\"")
            .replace(
                "url = \"sqlite://monitor.db?mode=rwc\"",
                &format!("url = \"{url}\""),
            );
        let cfg = Config::parse(&text).unwrap();
        assert_eq!(cfg.database.url, url);
        let op = cfg.auth.api_tokens[0].clone();
        let gw = cfg.auth.intake_tokens[0].clone();
        let app = App::new(cfg, Arc::new(SystemClock)).await.unwrap();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let router = http::router(app.clone());
        tokio::spawn(async move { axum::serve(l, router).await.unwrap() });
        Self {
            base,
            app,
            http: reqwest::Client::new(),
            op,
            gw,
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn a_previous_release_sqlite_database_upgrades_and_stays_usable() {
    still_usable(&Upgraded::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_release_postgres_database_upgrades_and_stays_usable() {
    let pg = common::pg::Pg::start();
    still_usable(&Upgraded::postgres(&pg).await).await;
}

async fn still_usable(u: &Upgraded) {
    // Every migration is applied, the old ones untouched.
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&u.app.db)
            .await
            .unwrap();
    let all: Vec<i64> = db::MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(applied, all);

    // The old warning, acknowledged and confirmed by the old release.
    let (s, ws) = u.call("GET", "/api/v1/warnings", &u.op, None).await;
    assert_eq!(s, 200, "{ws}");
    let ws = ws.as_array().unwrap();
    assert_eq!(ws.len(), 1, "{ws:?}");
    let w = &ws[0];
    assert_eq!(w["venue_id"], "s1");
    assert_eq!(w["acked_by"], "p-safety");
    assert_eq!(w["state"], "DISPOSING", "{w}");

    // Idempotency survives the upgrade: the old event id is a duplicate.
    let event = |n: u32, state: &str, value: f64| {
        json!({"event_id": format!("gw-s1/s1/gas-0001/gas.lel/{n}"), "site": "s1",
               "device": "gas-0001", "kind": "gas", "rule": "gas.lel", "level": "red",
               "state": state, "value": value, "threshold": 50.0,
               "ts_ms": w["raised_ms"], "gateway": "gw-s1"})
    };
    let (s, r) = u
        .call(
            "POST",
            "/api/v1/alarms",
            &u.gw,
            Some(event(1, "raised", 62.5)),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["duplicate"], true, "{r}");
    assert_eq!(r["warning_id"], w["id"]);

    // The old hazard goes on through this release's gates to 销号.
    let (_, hz) = u.call("GET", "/api/v1/hazards", &u.op, None).await;
    let hz = hz.as_array().unwrap();
    assert_eq!(hz.len(), 1, "{hz:?}");
    assert_eq!(hz[0]["state"], "RECTIFYING");
    let path = format!(
        "/api/v1/hazards/{}/transition",
        hz[0]["id"].as_str().unwrap()
    );
    let mv = |to: &str, fields: Value| json!({"to": to, "actor": "p-county", "reason": format!("to {to}"), "fields": fields});
    let (s, p) = u
        .call("POST", &path, &u.op, Some(mv("VERIFYING", json!({}))))
        .await;
    assert_eq!(s, 200, "{p}");
    let (s, p) = u
        .call(
            "POST",
            &path,
            &u.op,
            Some(mv(
                "CLOSED",
                json!({"acceptance_record": "valve replaced, tested", "signer": "Wang"}),
            )),
        )
        .await;
    assert_eq!(s, 200, "{p}");

    // The report of the old month (Beijing time) counts the old alarm and
    // hazard.
    let raised = w["raised_ms"].as_i64().unwrap();
    let month = chrono::DateTime::from_timestamp_millis(raised + 8 * 3_600_000)
        .unwrap()
        .format("%Y-%m")
        .to_string();
    let (s, rep) = u
        .call(
            "GET",
            &format!("/api/v1/reports/monthly?region=jx&month={month}"),
            &u.op,
            None,
        )
        .await;
    assert_eq!(s, 200, "{rep}");
    assert_eq!(rep["alarms"], 1, "{rep:#}");
    assert_eq!(rep["alarms_by_kind_level"]["gas/red"], 1, "{rep:#}");
    assert_eq!(rep["hazards_found"], 1, "{rep:#}");

    // A table of the new release (web accounts) works on the old data.
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM web_users")
        .fetch_one(&u.app.db)
        .await
        .unwrap();
    assert!(users >= 1, "the example's [[users]] were not written");
}
