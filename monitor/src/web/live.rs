//! Live updates for the dashboard: every change of a warning or hazard is
//! published on a `tokio::sync::broadcast` channel, and each open
//! dashboard holds one Server-Sent-Events stream fed from it (no polling).
//! Publishers send only ids; the SSE handler reads the current row, so an
//! event never carries stale state and a lagging reader only misses
//! intermediate states (it is told to resync).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::App;
use crate::web::auth::Session;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A warning was raised or changed state.
    Warning(String),
    /// A hazard was created or changed state.
    Hazard(String),
}

/// The broadcast side; cheap to clone. [`Live::close`] ends every open
/// stream, so a graceful shutdown does not wait for dashboards to go away.
#[derive(Debug, Clone)]
pub struct Live {
    tx: broadcast::Sender<Change>,
    closing: tokio_util::sync::CancellationToken,
}

impl Default for Live {
    fn default() -> Self {
        Self::new()
    }
}

impl Live {
    /// A channel that keeps the last 1024 changes for slow readers.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            closing: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// Publishes a change; nobody listening is fine.
    pub fn publish(&self, c: Change) {
        let _ = self.tx.send(c);
    }

    /// A new reader.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// Ends every open stream (at shutdown).
    pub fn close(&self) {
        self.closing.cancel();
    }
}

/// `GET /web/events`: the SSE stream of the signed-in dashboard.
#[utoipa::path(get, path = "/web/events", tag = "web", operation_id = "web_events",
    summary = "Server-Sent Events for the dashboard: `warning` (the warning row as JSON), `hazard` ({id}), `resync`",
    security(("session" = [])),
    responses(
        (status = 200, description = "The event stream", body = String, content_type = "text/event-stream"),
        crate::openapi::SessionErrors,
    ))]
pub async fn events(
    State(app): State<App>,
    s: Session,
) -> crate::error::Result<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    // Subscribe first, then read the scope: no change slips in between.
    let rx = app.live.subscribe();
    let scope = {
        let mut c = app.db.acquire().await?;
        crate::web::data::Scope::of(&mut c, &s).await?
    };
    let stream =
        futures_util::stream::unfold((app, rx, scope), |(app, mut rx, scope)| async move {
            loop {
                let next = tokio::select! {
                    () = app.live.closing.cancelled() => return None,
                    r = rx.recv() => r,
                };
                let ev = match next {
                    Ok(Change::Warning(id)) => {
                        let row = match app.db.acquire().await {
                            Ok(mut c) => crate::web::data::warning_row(&mut c, &id).await,
                            Err(e) => Err(e.into()),
                        };
                        match row {
                            Ok(Some(w)) if scope.sees_row(&w) => {
                                Event::default().event("warning").data(w.to_string())
                            }
                            Ok(_) => continue,
                            Err(e) => {
                                tracing::warn!(error = %e, "live: cannot read warning {id}");
                                Event::default().event("resync").data("{}")
                            }
                        }
                    }
                    Ok(Change::Hazard(id)) => Event::default()
                        .event("hazard")
                        .data(serde_json::json!({ "id": id }).to_string()),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        Event::default().event("resync").data("{}")
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((Ok(ev), (app, rx, scope)));
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
