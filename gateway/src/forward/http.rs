//! HTTP delivery: `POST {url}/api/v1/alarms`, `Authorization: Bearer`,
//! body = the `AlarmEvent` JSON of anquan-protocol.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::delivery::{Failure, classify_status, is_accepted};
use crate::secret::Secret;

/// `[forward.http]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The monitor's base URL (`https://monitor.example`); events go to
    /// `{url}/api/v1/alarms`.
    pub url: String,
    /// The bearer token: `env:NAME`, `file:PATH` or the token itself (see
    /// [`Secret`]).
    pub token: Secret,
    /// Timeout of one request, ms.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    5_000
}

impl HttpConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        crate::sink::influx::check_http_url("forward.http.url", &self.url)?;
        if self.token.is_empty() {
            return Err(ConfigError::new("forward.http.token", "must not be empty"));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new(
                "forward.http.timeout_ms",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// The HTTP destination.
#[derive(Debug)]
pub struct HttpDest {
    client: reqwest::Client,
    endpoint: String,
    auth: String,
}

impl HttpDest {
    /// A client for `cfg`.
    pub fn new(cfg: &HttpConfig) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .use_rustls_tls()
            .build()
            .map_err(|e| {
                ConfigError::new("forward.http", format!("cannot build the client: {e}"))
            })?;
        Ok(Self {
            client,
            endpoint: format!("{}/api/v1/alarms", cfg.url.trim_end_matches('/')),
            auth: format!("Bearer {}", cfg.token.expose()),
        })
    }
}

impl super::Destination for HttpDest {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn send(&mut self, event_json: &[u8]) -> Result<(), Failure> {
        let resp = self
            .client
            .post(&self.endpoint)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(event_json.to_vec())
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("{}: {e}", self.endpoint)))?;
        let status = resp.status().as_u16();
        if is_accepted(status) {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(classify_status(
            status,
            format!(
                "HTTP {status} from {}: {}",
                self.endpoint,
                text.chars().take(200).collect::<String>()
            ),
        ))
    }
}
