//! anquan-monitor: the "六个自动" supervision service.
//!
//! An alarm from the gateway becomes a warning ([`intake`]); the warning's
//! state machine and call ladder ([`warnings`]) decide who is called, who
//! is informed and who hears of the outcome, by the level's policy
//! ([`policy`]) over the venue's people and the rota ([`directory`],
//! [`rota`]), in words from one catalogue ([`messages`]), through one queue
//! and its channels ([`notify`]); people acknowledge from the message
//! ([`ack`]). A confirmed warning becomes a disposal task, hazards go
//! through their gated lifecycle, dated items walk the reminder ladder
//! ([`work`]) and everything ends up in reports ([`reports`]). Every state
//! change is an append-only audit row. Storage is SQLite (embedded default)
//! or PostgreSQL, through the same SQL ([`db`]); time comes from a
//! [`clock::Clock`], so tests never sleep.

pub mod ack;
pub mod callbacks;
pub mod clock;
pub mod config;
pub mod correlation;
pub mod db;
pub mod deferred;
pub mod directory;
pub mod error;
pub mod events;
pub mod evidence;
pub mod export;
pub mod first_run;
pub mod gatekeeper;
pub mod geo;
pub mod http;
pub mod intake;
pub mod liveness;
pub mod maintenance;
pub mod messages;
pub mod metrics;
pub mod moderation;
pub mod notify;
pub mod openapi;
pub mod photo;
pub mod policy;
pub mod public;
pub mod recurrence;
pub mod registry;
pub mod report_mail;
pub mod reports;
pub mod rota;
pub mod rows;
pub mod scheduler;
pub use anquan_secret as secret;
pub mod snapshots;
pub mod templates;
pub mod text;
pub mod tokens;
pub mod warnings;
pub mod web;
pub mod work;

use std::sync::Arc;

use sqlx::AnyPool;

pub use config::Config;
pub use error::{Error, Result};

/// The service: configuration, storage, clock and outbound clients. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct App {
    /// Storage.
    pub db: AnyPool,
    /// Configuration.
    pub cfg: Arc<Config>,
    /// Time.
    pub clock: Arc<dyn clock::Clock>,
    /// Outbound channels.
    pub notifier: Arc<notify::Notifier>,
    /// This replica's name (lease owner).
    pub instance: String,
    /// Alarm intake with group commit.
    pub intake: intake::Batcher,
    /// What changed (the web's live dashboard listens).
    pub events: events::Bus,
    /// The notification policies, compiled.
    pub policies: Arc<policy::Policies>,
    /// Sign-in failures (rate limit).
    pub limiter: Arc<web::auth::Limiter>,
    /// Password verifications at once (the global sign-in guard).
    pub signin_gate: Arc<web::auth::VerifyGate>,
    /// Which peers may name the client in `X-Forwarded-For`.
    pub proxies: Arc<web::client::TrustedProxies>,
    /// Prometheus metrics of this replica (`GET /metrics`).
    pub metrics: Arc<metrics::Metrics>,
    /// Intake tokens, their site scopes and rate limits.
    pub gatekeeper: Arc<gatekeeper::Gatekeeper>,
    /// Anonymous hazard reports per client address.
    pub public_limit: Arc<gatekeeper::PublicLimit>,
    /// When this process last looked for reports to generate.
    pub snapshot_run: Arc<snapshots::LastRun>,
}

impl App {
    /// Opens and migrates the database, seeds the registry.
    pub async fn new(cfg: Config, clock: Arc<dyn clock::Clock>) -> Result<Self> {
        let db = db::connect(&cfg.database.url, cfg.database.max_connections).await?;
        let notifier = Arc::new(notify::Notifier::new(&cfg.notify)?);
        let people: std::collections::HashSet<&str> =
            cfg.seed.people.iter().map(|p| p.id.as_str()).collect();
        let venues: std::collections::HashSet<&str> =
            cfg.seed.venues.iter().map(|v| v.id.as_str()).collect();
        let policies = Arc::new(cfg.policy.compile(&people, &venues)?);
        {
            let mut tx = db.begin().await?;
            registry::seed(&mut tx, &cfg.seed).await?;
            web::auth::seed_users(&mut tx, &cfg.users, clock.now_ms()).await?;
            tx.commit().await?;
        }
        let (intake, rx) = intake::Batcher::new();
        let gatekeeper = Arc::new(gatekeeper::Gatekeeper::new(&cfg.auth));
        let public_limit = Arc::new(gatekeeper::PublicLimit::new(
            cfg.server.public_reports_per_min,
        ));
        let signin_gate = Arc::new(web::auth::VerifyGate::new(
            cfg.web.signin_parallel,
            cfg.web.signin_queue,
        )?);
        let proxies = Arc::new(
            web::client::TrustedProxies::parse(&cfg.server.trusted_proxies)
                .map_err(Error::Config)?,
        );
        let app = Self {
            db,
            cfg: Arc::new(cfg),
            clock,
            notifier,
            instance: db::new_id(),
            intake,
            events: events::Bus::new(),
            policies,
            limiter: Arc::new(web::auth::Limiter::default()),
            signin_gate,
            proxies,
            metrics: Arc::new(metrics::Metrics::new()),
            gatekeeper,
            public_limit,
            snapshot_run: Arc::default(),
        };
        tokio::spawn(intake::Batcher::run(app.clone(), rx));
        Ok(app)
    }

    /// Now, from the clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}
