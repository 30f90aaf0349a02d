//! HTTP delivery: `POST {url}/api/v1/alarms`, `Authorization: Bearer`,
//! body = the `AlarmEvent` JSON of anquan-protocol. Up to `concurrency`
//! requests at once over a pool of keep-alive connections; the drain keeps
//! one request per (site, device, rule) in flight, since requests on
//! different connections may arrive in any order.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::{Failure, classify_status, is_accepted};
use crate::error::ConfigError;
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
    /// Requests in flight at once (each on its own connection). A backlog
    /// drains at about `concurrency / round trip` alarms per second.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Seconds between heartbeats to the monitor
    /// (`POST {url}/api/v1/gateways/{gateway.id}/heartbeat`: the sites this
    /// gateway serves, its broker link, buffer and queue), 5 to 3600; 0 =
    /// none. Two missed heartbeats make the monitor treat those sites as
    /// blind (a warning per site; their venues never show green).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_s: u32,
}

fn default_heartbeat() -> u32 {
    30
}

fn default_timeout() -> u64 {
    5_000
}

fn default_concurrency() -> usize {
    128
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
        if self.heartbeat_s != 0 && !(5..=3_600).contains(&self.heartbeat_s) {
            return Err(ConfigError::new(
                "forward.http.heartbeat_s",
                "0 (no heartbeat) or 5 to 3600",
            ));
        }
        if !(1..=1_024).contains(&self.concurrency) {
            return Err(ConfigError::new(
                "forward.http.concurrency",
                "must be between 1 and 1024",
            ));
        }
        Ok(())
    }
}

/// The HTTP destination.
#[derive(Debug, Clone)]
pub struct HttpDest {
    client: reqwest::Client,
    endpoint: Arc<str>,
    auth: Arc<str>,
    base: Arc<str>,
}

impl HttpDest {
    /// A client for `cfg`.
    pub fn new(cfg: &HttpConfig) -> Result<Self, ConfigError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .pool_max_idle_per_host(cfg.concurrency)
            .tcp_nodelay(true)
            .use_rustls_tls()
            .build()
            .map_err(|e| {
                ConfigError::new("forward.http", format!("cannot build the client: {e}"))
            })?;
        Ok(Self {
            client,
            endpoint: format!("{}/api/v1/alarms", cfg.url.trim_end_matches('/')).into(),
            auth: format!("Bearer {}", cfg.token.expose()).into(),
            base: cfg.url.trim_end_matches('/').into(),
        })
    }
}

impl crate::drain::Destination for HttpDest {
    fn name(&self) -> &'static str {
        "http"
    }

    fn deliver(
        &self,
        items: Vec<Arc<crate::drain::Item>>,
    ) -> impl std::future::Future<Output = Result<(), Failure>> + Send + 'static {
        let this = self.clone();
        async move {
            for item in items {
                this.post(item.data.clone()).await?;
            }
            Ok(())
        }
    }
}

impl HttpDest {
    async fn post(&self, body: bytes::Bytes) -> Result<(), Failure> {
        let endpoint = &*self.endpoint;
        let resp = self
            .client
            .post(endpoint)
            .header(reqwest::header::AUTHORIZATION, &*self.auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("{endpoint}: {e}")))?;
        let status = resp.status().as_u16();
        if is_accepted(status) {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(classify_status(
            status,
            format!(
                "HTTP {status} from {endpoint}: {}",
                text.chars().take(200).collect::<String>()
            ),
        ))
    }
}

/// What a heartbeat reports (the monitor's `liveness::Heartbeat`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heartbeat {
    /// The sites this gateway serves (its devices' sites).
    pub sites: Vec<String>,
    /// Seconds until the next heartbeat.
    pub interval_s: u32,
    /// Whether the ingest link to the broker is up.
    pub broker_connected: bool,
    /// Points buffered for the time-series database.
    pub buffered: u64,
    /// Alarms waiting for delivery to the monitor.
    pub alarms_queued: u64,
}

impl HttpDest {
    /// Posts one heartbeat of `gateway`; the error says why it failed.
    pub async fn heartbeat(&self, gateway: &str, hb: &Heartbeat) -> Result<(), String> {
        let url = format!("{}/api/v1/gateways/{gateway}/heartbeat", self.base);
        let resp = self
            .client
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, &*self.auth)
            .json(hb)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        if is_accepted(status) {
            return Ok(());
        }
        let text = resp.text().await.unwrap_or_default();
        Err(format!(
            "HTTP {status} from {url}: {}",
            text.chars().take(200).collect::<String>()
        ))
    }
}
