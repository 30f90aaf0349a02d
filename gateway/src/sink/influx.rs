//! InfluxDB 2 / VictoriaMetrics through the `influxdb2` crate (rustls, no
//! OpenSSL): `POST /api/v2/write?precision=ms` with line protocol.

use std::time::Duration;

use influxdb2::api::write::TimestampPrecision;
use serde::{Deserialize, Serialize};

use crate::delivery::{Failure, classify_status};
use crate::error::ConfigError;
use crate::secret::Secret;

/// `[sink.influx]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Base URL, `http://host:8086` (VictoriaMetrics: `http://host:8428`).
    pub url: String,
    /// Organisation (VictoriaMetrics ignores it).
    pub org: String,
    /// Bucket (VictoriaMetrics ignores it).
    pub bucket: String,
    /// API token (VictoriaMetrics ignores it unless it sits behind auth):
    /// `env:NAME`, `file:PATH` or the token itself (see [`Secret`]).
    pub token: Secret,
    /// Timeout of one write, ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    10_000
}

impl InfluxConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_http_url("sink.influx.url", &self.url)?;
        if self.org.is_empty() {
            return Err(ConfigError::new("sink.influx.org", "must not be empty"));
        }
        if self.bucket.is_empty() {
            return Err(ConfigError::new("sink.influx.bucket", "must not be empty"));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new(
                "sink.influx.timeout_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Checks that `url` is an http(s) URL with a host.
pub(crate) fn check_http_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let u = reqwest::Url::parse(url)
        .map_err(|e| ConfigError::new(key, format!("`{url}` is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(ConfigError::new(
            key,
            format!("`{url}` must be an http:// or https:// URL with a host"),
        ));
    }
    Ok(())
}

/// The writer.
#[derive(Debug)]
pub struct InfluxWriter {
    client: influxdb2::Client,
    org: String,
    bucket: String,
}

impl InfluxWriter {
    /// A client for `cfg`.
    pub fn new(cfg: &InfluxConfig) -> Result<Self, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .use_rustls_tls();
        let client =
            influxdb2::ClientBuilder::with_builder(http, &cfg.url, &cfg.org, cfg.token.expose())
                .build()
                .map_err(|e| {
                    ConfigError::new("sink.influx", format!("cannot build the client: {e}"))
                })?;
        Ok(Self {
            client,
            org: cfg.org.clone(),
            bucket: cfg.bucket.clone(),
        })
    }

    /// Writes one batch of lines.
    pub async fn write(&self, body: String) -> Result<(), Failure> {
        match self
            .client
            .write_line_protocol_with_precision(
                &self.org,
                &self.bucket,
                body,
                TimestampPrecision::Milliseconds,
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(influxdb2::RequestError::Http { status, text }) => {
                let why = format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                );
                Err(classify_status(status.as_u16(), why))
            }
            Err(e) => Err(Failure::Retry(e.to_string())),
        }
    }
}
