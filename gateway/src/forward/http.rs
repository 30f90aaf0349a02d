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
