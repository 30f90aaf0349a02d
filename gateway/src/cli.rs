//! The `anquan-gateway` command line (`run`, `check`); the binary's
//! `main` is [`main`], so test harnesses can ship the very same program.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Config, Gateway};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "anquan-gateway",
    version,
    about = "The anquan-iot edge gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway until SIGTERM or Ctrl-C (then flush and stop).
    Run {
        /// The configuration file (see gateway.example.toml).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the configuration and the rules file, print the effective
    /// configuration, and exit (1 with the bad key on error).
    Check {
        /// The configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn check(path: &std::path::Path) -> Result<Config, String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    cfg.rules.load().map_err(|e| e.to_string())?;
    crate::sink::Writer::new(&cfg.sink, &cfg.gateway.data_dir).map_err(|e| e.to_string())?;
    Ok(cfg)
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => match check(&config) {
            Ok(cfg) => {
                for w in cfg.warnings() {
                    eprintln!("warning: {w}");
                }
                println!("# {}: OK\n{}", config.display(), cfg.to_effective_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => {
            let cfg = match check(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            cfg.log.init();
            for w in cfg.warnings() {
                tracing::warn!("config: {w}");
            }
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            rt.block_on(async move {
                let handle = match Gateway::start(cfg).await {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start");
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                };
                let failed = loop {
                    tokio::select! {
                        () = terminated() => break false,
                        () = tokio::time::sleep(std::time::Duration::from_millis(500)) => {
                            if handle.is_failed() { break true; }
                        }
                    }
                };
                if failed {
                    tracing::error!("a pipeline task ended unexpectedly; stopping");
                }
                handle.shutdown().await;
                if failed {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            })
        }
    }
}
