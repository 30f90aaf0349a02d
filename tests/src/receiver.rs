//! A stand-in for the monitor's alarm intake, to the HTTP contract:
//! `POST /api/v1/alarms` with `Authorization: Bearer <token>` and an
//! `AlarmEvent` body; 401 on a wrong token, 422 on a body that does not
//! decode, 200 otherwise (a duplicate `event_id` too: idempotent). It can
//! be told to answer the next requests with chosen statuses (outages).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anquan_protocol::AlarmEvent;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

#[derive(Debug, Default)]
struct Inner {
    token: String,
    script: VecDeque<u16>,
    /// Accepted events by id, in first-arrival order of ids.
    events: BTreeMap<String, AlarmEvent>,
    order: Vec<String>,
    requests: u64,
    duplicates: u64,
    unauthorized: u64,
    /// Heartbeats with the right token: (gateway, body).
    heartbeats: Vec<(String, serde_json::Value)>,
}

/// The receiver, serving on a free loopback port until dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn intake(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Ok(mut s) = inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    s.requests += 1;
    if let Some(code) = s.script.pop_front() {
        return StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let expected = format!("Bearer {}", s.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        s.unauthorized += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(event) = AlarmEvent::decode(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    let id = event.event_id.as_str().to_owned();
    if s.events.contains_key(&id) {
        s.duplicates += 1;
    } else {
        s.order.push(id.clone());
        s.events.insert(id, event);
    }
    StatusCode::OK
}

/// `POST /api/v1/gateways/{id}/heartbeat`: recorded (right token, JSON
/// body), 200; never scripted (the outage script is for alarms).
async fn heartbeat(
    State(inner): State<Arc<Mutex<Inner>>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Ok(mut s) = inner.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR;
    };
    let expected = format!("Bearer {}", s.token);
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(v) = serde_json::from_slice(&body) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    s.heartbeats.push((id, v));
    StatusCode::OK
}

impl Receiver {
    /// Starts one that accepts `token`.
    pub fn start(token: &str) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            token: token.to_string(),
            ..Inner::default()
        }));
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        let _ = listener.set_nonblocking(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .route("/api/v1/alarms", post(intake))
            .route("/api/v1/gateways/{id}/heartbeat", post(heartbeat))
            .with_state(inner.clone());
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(l) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(l, app)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Self {
            addr,
            inner,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The base URL (`forward.http.url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers the next requests with these statuses, in order.
    pub fn answer_next(&self, statuses: &[u16]) {
        if let Ok(mut s) = self.inner.lock() {
            s.script.extend(statuses.iter().copied());
        }
    }

    /// Heartbeats received: (gateway, body), in order.
    pub fn heartbeats(&self) -> Vec<(String, serde_json::Value)> {
        self.inner
            .lock()
            .map(|s| s.heartbeats.clone())
            .unwrap_or_default()
    }

    /// Accepted events, one per id, in arrival order.
    pub fn events(&self) -> Vec<AlarmEvent> {
        self.inner
            .lock()
            .map(|s| {
                s.order
                    .iter()
                    .filter_map(|id| s.events.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many distinct events were accepted (cheap: no copies).
    pub fn accepted(&self) -> usize {
        self.inner.lock().map(|s| s.order.len()).unwrap_or(0)
    }

    /// (requests, duplicate ids accepted again, 401s given).
    pub fn counts(&self) -> (u64, u64, u64) {
        self.inner
            .lock()
            .map(|s| (s.requests, s.duplicates, s.unauthorized))
            .unwrap_or_default()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
