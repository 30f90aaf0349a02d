//! Operations endpoints: `GET /healthz` (JSON, 200 while the pipeline runs,
//! the ingest connection is up and the durable buffer can be written, 503
//! otherwise) and `GET /metrics`
//! (Prometheus text format).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{ConfigError, parse_addr};
use crate::metrics::Metrics;
use crate::store::{Queue, Store};

/// `[api]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address of `/healthz` and `/metrics`; empty = off. Port 0
    /// picks a free port (the embedding API reports it).
    pub listen: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
        }
    }
}

impl ApiConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.listen.is_empty() {
            parse_addr("api.listen", &self.listen)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct AppState {
    metrics: Metrics,
    store: Arc<Store>,
}

/// Refreshes the gauges computed on demand (queue depth, bytes, age).
pub fn refresh_queue_gauges(metrics: &Metrics, store: &Store) {
    let now = crate::clock::wall_ms();
    for q in Queue::ALL {
        let name = q.as_str();
        metrics
            .queue_depth
            .with_label_values(&[name])
            .set(store.len(q) as i64);
        metrics
            .queue_bytes
            .with_label_values(&[name])
            .set(store.bytes(q) as i64);
        let age = store
            .first(q)
            .ok()
            .flatten()
            .map_or(0.0, |e| now.saturating_sub(e.enqueued_ms) as f64 / 1000.0);
        metrics.queue_oldest_age.with_label_values(&[name]).set(age);
    }
}

async fn metrics_page(State(s): State<AppState>) -> impl IntoResponse {
    let st = s.clone();
    let _ = tokio::task::spawn_blocking(move || refresh_queue_gauges(&st.metrics, &st.store)).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    let connected = s.metrics.mqtt_connected.get() == 1;
    let buffer_ok = s.metrics.buffer_failing.get() == 0;
    let healthy = connected && buffer_ok;
    let body = serde_json::json!({
        "status": if healthy { "ok" } else { "degraded" },
        "mqtt_connected": connected,
        "buffer_writable": buffer_ok,
        "queue_points": s.store.len(Queue::Points),
        "queue_alarms_http": s.store.len(Queue::AlarmsHttp),
        "queue_alarms_mqtt": s.store.len(Queue::AlarmsMqtt),
    });
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body))
}

/// Binds the listener; returns the bound address and the serving future.
pub async fn serve(
    cfg: ApiConfig,
    metrics: Metrics,
    store: Arc<Store>,
    shutdown: CancellationToken,
) -> Result<Option<(SocketAddr, impl std::future::Future<Output = ()>)>, std::io::Error> {
    if cfg.listen.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .with_state(AppState { metrics, store });
    let fut = async move {
        let r = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "api server stopped");
        }
    };
    Ok(Some((addr, fut)))
}
