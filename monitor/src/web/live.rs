//! Live updates for the dashboard: each open dashboard holds one
//! Server-Sent-Events stream fed from the domain's event bus
//! ([`crate::events`]); no polling. Events carry ids; this handler reads
//! the current row, so an event never carries stale state, and a lagging
//! reader only misses intermediate states (it is told to resync).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::App;
use crate::events::Event as Change;
use crate::web::auth::Session;

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
    let rx = app.events.subscribe();
    let scope = {
        let mut c = app.db.acquire().await?;
        crate::web::data::Scope::of(&mut c, &s).await?
    };
    let lang = s.lang;
    let stream =
        futures_util::stream::unfold((app, rx, scope), move |(app, mut rx, scope)| async move {
            loop {
                let next = tokio::select! {
                    () = app.events.closing().cancelled() => return None,
                    r = rx.recv() => r,
                };
                let ev = match next {
                    Ok(Change::Warning(id)) => {
                        let row = match app.db.acquire().await {
                            Ok(mut c) => {
                                crate::web::data::warning_row(&mut c, &id, lang, app.now_ms()).await
                            }
                            Err(e) => Err(e.into()),
                        };
                        match row {
                            Ok(Some(w)) if scope.sees_row(&w.row) => Event::default()
                                .event("warning")
                                .json_data(&w)
                                .unwrap_or_else(|_| Event::default().event("resync").data("{}")),
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
