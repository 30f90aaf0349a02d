//! `anquan-monitor serve --config monitor.toml` / `anquan-monitor check` /
//! `anquan-monitor openapi`.

use std::path::PathBuf;
use std::sync::Arc;

use anquan_monitor::{App, Config, clock::SystemClock, http, scheduler};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "anquan-monitor",
    about = "The \"六个自动\" supervision service"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Runs the HTTP API and the scheduler.
    Serve {
        /// The TOML configuration.
        #[arg(long, default_value = "monitor.toml")]
        config: PathBuf,
        /// Run even with the example's placeholder secrets and passwords
        /// (a demonstration, never production).
        #[arg(long)]
        demo: bool,
    },
    /// Validates the configuration (names the bad key) and exits.
    Check {
        /// The TOML configuration.
        #[arg(long, default_value = "monitor.toml")]
        config: PathBuf,
        /// Accept the example's placeholder secrets and passwords.
        #[arg(long)]
        demo: bool,
    },
    /// Reads a password from stdin (one line) and prints its argon2id PHC
    /// string for `[[users]] password_hash`.
    HashPassword,
    /// Prints the SMS texts to register with the provider, one per message
    /// (the keys of `[notify.sms.templates]`).
    SmsTemplates {
        /// `aliyun` (`${name}` variables) or `tencent` (`{1}`).
        #[arg(long, default_value = "aliyun")]
        provider: String,
        /// `zh` or `en`.
        #[arg(long, default_value = "zh")]
        lang: String,
    },
    /// Prints the OpenAPI 3 document of the HTTP API (the one served at
    /// `/api/openapi.json`) and exits.
    Openapi,
    /// Issues a personal API token for a `[[users]]` account and prints it
    /// (once: only its hash is stored). For a person without a browser at
    /// hand; a signed-in person issues their own with `POST /api/v1/me/tokens`.
    IssueToken {
        /// The TOML configuration.
        #[arg(long, default_value = "monitor.toml")]
        config: PathBuf,
        /// The account (`[[users]] username`).
        #[arg(long)]
        user: String,
        /// What the token is for.
        #[arg(long)]
        label: String,
        /// Lifetime in days (1-365).
        #[arg(long, default_value_t = anquan_monitor::tokens::DEFAULT_DAYS)]
        days: u32,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anquan-monitor: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let r = match cli.cmd {
        Cmd::Check { config, demo } => load(&config, demo).map(|cfg| {
            for w in cfg.warnings() {
                eprintln!("warning: {w}");
            }
            println!("{}: ok", config.display());
        }),
        Cmd::Serve { config, demo } => rt.block_on(serve(config, demo)),
        Cmd::HashPassword => hash_password(),
        Cmd::SmsTemplates { provider, lang } => sms_templates(&provider, &lang),
        Cmd::Openapi => {
            println!("{}", anquan_monitor::openapi::json());
            Ok(())
        }
        Cmd::IssueToken {
            config,
            user,
            label,
            days,
        } => rt.block_on(issue_token(&config, &user, &label, days)),
    };
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("anquan-monitor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn issue_token(
    path: &std::path::Path,
    user: &str,
    label: &str,
    days: u32,
) -> anquan_monitor::Result<()> {
    // The demo's placeholders do not matter here: nothing is served.
    let cfg = load(path, true)?;
    let db = anquan_monitor::db::connect(&cfg.database.url, 1).await?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut tx = db.begin().await?;
    // The accounts are the file's, as `serve` would seed them.
    anquan_monitor::web::auth::seed_users(&mut tx, &cfg.users, now).await?;
    let t = anquan_monitor::tokens::NewToken {
        label: label.to_string(),
        days: Some(days),
    };
    let issued = anquan_monitor::tokens::issue(&mut tx, now, user, "cli:issue-token", &t).await?;
    tx.commit().await?;
    println!("{}", issued.token);
    eprintln!(
        "token {} for {user}, until {} (Unix ms); send it as Authorization: Bearer <token>",
        issued.id, issued.expires_ms
    );
    Ok(())
}

fn sms_templates(provider: &str, lang: &str) -> anquan_monitor::Result<()> {
    let numbered = match provider {
        "aliyun" => false,
        "tencent" => true,
        _ => {
            return Err(anquan_monitor::Error::Invalid(format!(
                "--provider: {provider:?} is neither aliyun nor tencent"
            )));
        }
    };
    let lang = anquan_monitor::messages::Lang::parse(lang).ok_or_else(|| {
        anquan_monitor::Error::Invalid(format!("--lang: {lang:?} is neither zh nor en"))
    })?;
    print!(
        "{}",
        anquan_monitor::messages::sms_registration(lang, numbered)
    );
    Ok(())
}

fn hash_password() -> anquan_monitor::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\r', '\n']);
    if pw.is_empty() {
        return Err(anquan_monitor::Error::Invalid(
            "give the password on stdin (one line, not empty)".into(),
        ));
    }
    println!("{}", anquan_monitor::web::auth::hash_password(pw, None)?);
    Ok(())
}

/// Loads the configuration; without `demo`, refuses the example's
/// placeholder secrets and passwords (every one named).
fn load(path: &std::path::Path, demo: bool) -> anquan_monitor::Result<Config> {
    let cfg = Config::load(path)?;
    let problems = anquan_monitor::first_run::unsafe_settings(&cfg);
    if problems.is_empty() {
        return Ok(cfg);
    }
    if demo {
        for p in &problems {
            tracing::warn!("config (accepted for --demo): {p}");
        }
        return Ok(cfg);
    }
    for p in &problems {
        eprintln!("error: {p}");
    }
    Err(anquan_monitor::Error::Invalid(format!(
        "{} setting(s) of {} are the example's placeholders or guessable passwords (listed above); \
         replace them, or pass --demo for a throw-away demonstration",
        problems.len(),
        path.display()
    )))
}

async fn serve(path: PathBuf, demo: bool) -> anquan_monitor::Result<()> {
    let cfg = load(&path, demo)?;
    for w in cfg.warnings() {
        tracing::warn!("config: {w}");
    }
    let listen = cfg.server.listen.clone();
    let app = App::new(cfg, Arc::new(SystemClock)).await?;
    let stop = CancellationToken::new();
    let sched = tokio::spawn(scheduler::run(app.clone(), stop.clone()));
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "anquan-monitor listening");
    let s2 = stop.clone();
    let events = app.events.clone();
    axum::serve(
        listener,
        http::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        // Open dashboards hold SSE streams: end them, or the graceful
        // shutdown would wait for every browser tab to close.
        events.close();
        s2.cancel();
    })
    .await?;
    stop.cancel();
    let _ = sched.await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
