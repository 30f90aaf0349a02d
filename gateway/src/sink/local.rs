//! The local sink, when no time-series database is configured: line
//! protocol appended to a file (fsynced before the points leave the
//! buffer) or printed on stdout.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::delivery::Failure;

/// `[sink.file]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// The file; relative to `gateway.data_dir`.
    pub path: PathBuf,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("points.lp"),
        }
    }
}

/// A file or stdout.
#[derive(Debug)]
pub enum LocalWriter {
    /// Append to this file.
    File(PathBuf),
    /// Print.
    Stdout,
}

impl LocalWriter {
    /// Appends to `path`.
    pub fn file(path: PathBuf) -> Self {
        Self::File(path)
    }

    /// Prints.
    pub fn stdout() -> Self {
        Self::Stdout
    }

    /// Writes one batch.
    pub async fn write(&self, body: String) -> Result<(), Failure> {
        match self {
            Self::File(p) => {
                let io = |e: std::io::Error| Failure::Retry(format!("{}: {e}", p.display()));
                if let Some(dir) = p.parent() {
                    tokio::fs::create_dir_all(dir).await.map_err(io)?;
                }
                let mut f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .await
                    .map_err(io)?;
                f.write_all(body.as_bytes()).await.map_err(io)?;
                f.sync_data().await.map_err(io)?;
                Ok(())
            }
            Self::Stdout => {
                let mut out = tokio::io::stdout();
                out.write_all(body.as_bytes())
                    .await
                    .map_err(|e| Failure::Retry(format!("stdout: {e}")))?;
                out.flush()
                    .await
                    .map_err(|e| Failure::Retry(format!("stdout: {e}")))
            }
        }
    }
}
