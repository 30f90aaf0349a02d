//! What changed, for whoever listens: the domain publishes an id on a
//! `tokio::sync::broadcast` channel after each commit (a warning raised or
//! changed, a hazard changed); the web layer subscribes (the dashboard's
//! SSE stream). The domain never calls into the web layer. Publishers send
//! only ids, and a listener reads the current row, so an event never
//! carries stale state; a listener that lags only misses intermediate
//! states (it is told so and resyncs).

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A warning was raised or changed (state, level, ladder, deliveries).
    Warning(String),
    /// A hazard was created or changed state.
    Hazard(String),
}

/// The bus; cheap to clone. [`Bus::close`] tells every listener to stop
/// (at shutdown, so open dashboards do not hold it up).
#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
    closing: CancellationToken,
}

impl Default for Bus {
    fn default() -> Self {
        Self::new()
    }
}

impl Bus {
    /// A bus that keeps the last 1024 events for slow listeners.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            closing: CancellationToken::new(),
        }
    }

    /// Publishes; nobody listening is fine.
    pub fn publish(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    /// A new listener.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Asks every listener to stop.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Cancelled once [`Bus::close`] was called.
    pub fn closing(&self) -> &CancellationToken {
        &self.closing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listeners_get_what_is_published_after_they_subscribe() {
        let b = Bus::new();
        b.publish(Event::Warning("before".into()));
        let mut rx = b.subscribe();
        b.publish(Event::Hazard("h".into()));
        assert_eq!(rx.recv().await.ok(), Some(Event::Hazard("h".into())));
        assert!(!b.closing().is_cancelled());
        b.close();
        assert!(b.closing().is_cancelled());
    }
}
