//! The state of the ingest link to the broker, published by `ingest` on a
//! `watch` channel: the pipeline judges silence only while the gateway
//! can hear its devices, and learns whether the broker kept its session
//! across a crash; an embedder waits for the subscription before it
//! publishes. (The `mqtt_connected` / `mqtt_subscribed` gauges show the
//! same for operators; nothing reads them back.)

use tokio::sync::watch;

/// Where the link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    /// Not connected (or never was).
    #[default]
    Down,
    /// Connected; the subscriptions are not acknowledged yet.
    Connected,
    /// The broker acknowledged the subscriptions (or kept them in the
    /// session): frames reach the gateway.
    Subscribed,
}

/// The ingest link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Link {
    /// Where it is.
    pub state: State,
    /// Whether the broker still held the gateway's session at the first
    /// connection of this run (`None` before it): the frames it held for
    /// us while we were down come back only if it did.
    pub first_session_present: Option<bool>,
}

/// The sending side, held by ingest.
pub type LinkTx = watch::Sender<Link>;
/// A receiving side.
pub type LinkRx = watch::Receiver<Link>;

/// A new channel: down, never connected.
pub fn channel() -> (LinkTx, LinkRx) {
    watch::channel(Link::default())
}
