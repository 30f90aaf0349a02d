//! MQTT ingest with rumqttc: TCP or TLS (rustls), username/password or
//! client certificates, a persistent session (`clean_session = false`, fixed
//! client id) so QoS 1 frames published while the gateway restarts wait in
//! the broker.
//!
//! This module is the MQTT edge of the gateway: it turns a publish into the
//! judge's transport-neutral [`Input`] (topic → site, device and channel;
//! payload → decoded frame or status; QoS and DUP → [`Guarantee`]) and
//! rejects, counts and logs what does not decode. It owns the broker's
//! acknowledgements: every publish forwarded to the pipeline carries a
//! receipt number, and a QoS 1 publish is acknowledged only once the
//! pipeline reports (on a `watch` channel) that every receipt up to its own
//! is committed to the durable store. Acknowledgements go out in the order
//! the publishes came in.
//!
//! The broker keeps our subscriptions in the persistent session; when it
//! says it has none (`session_present = false`: a first start, or a broker
//! that lost its state) we subscribe. Subscribing again to a session that
//! has them would make the broker send every retained status once more.
//! Connection errors back off exponentially. A watchdog reconnects when no
//! message at all arrived for `watchdog_s` (a half-open link). The link's
//! state goes out on a `watch` channel ([`crate::link`]).
//!
//! Lab mode (`[lab] clock = "driven"`, [`crate::lab`]): clock ticks on
//! `lab/clock/tick` are put in order with the device messages around them
//! here and handed to the pipeline in the same channel; the pipeline's
//! acknowledgements go out from here.
//!
//! Back-pressure: inputs go to the pipeline through a bounded channel;
//! when it is full this task stops polling the socket, so the broker (and
//! its in-flight window) holds the rest. Nothing piles up in memory.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anquan_protocol::{
    DeviceStatus, GATEWAY_SUBSCRIPTIONS, Id, Telemetry, Topic, TopicError, TopicKind,
};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, SubscribeFilter,
    TlsConfiguration, Transport,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, BackoffConfig};
use crate::error::ConfigError;
use crate::judge::{Body, Guarantee, Input};
use crate::lab::{self, Sequencer, Tick, TickAck, TickError};
use crate::link::{LinkTx, State};
use crate::logging::RateLimiter;
use crate::metrics::Metrics;
use crate::pipeline::{Arrival, Inbound, Receipt};
use crate::secret::Secret;
use crate::validate::Reject;

/// `[mqtt.tls]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA(s) that signed the broker's certificate.
    pub ca_file: PathBuf,
    /// PEM client certificate (chain), for brokers that require one.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate.
    pub client_key_file: Option<PathBuf>,
}

impl TlsConfig {
    pub(crate) fn resolve_paths(&mut self, dir: &std::path::Path) {
        for p in [
            Some(&mut self.ca_file),
            self.client_cert_file.as_mut(),
            self.client_key_file.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}

/// `[mqtt]`: the broker the devices publish to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// Broker host (ignored when `[broker] enabled`: the embedded one is used).
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Client id; fixed, so the broker keeps our session. Default
    /// `anquan-gateway-{gateway.id}`.
    pub client_id: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// Password: `env:NAME`, `file:PATH` or the password itself (see
    /// [`Secret`]).
    pub password: Option<Secret>,
    /// Keep-alive, seconds.
    pub keep_alive_s: u64,
    /// Keep the session (and the QoS 1 frames queued in it) across
    /// reconnects and restarts. Turning it off loses frames sent while the
    /// gateway is down.
    pub persistent_session: bool,
    /// Reconnect when no message arrived for this many seconds (0 = off).
    /// Set it to a few report periods of the quietest device.
    pub watchdog_s: u64,
    /// Frames waiting between the socket and the pipeline.
    pub channel_capacity: usize,
    /// Largest accepted MQTT packet, bytes (frames are ≤ 1 KiB; bigger
    /// packets are refused by the client).
    pub max_packet_bytes: usize,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// TLS; plain TCP without it.
    pub tls: Option<TlsConfig>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: None,
            username: None,
            password: None,
            keep_alive_s: 15,
            persistent_session: true,
            watchdog_s: 0,
            channel_capacity: 4_096,
            max_packet_bytes: 16 * 1024,
            backoff: BackoffConfig::default(),
            tls: None,
        }
    }
}

fn read(key: &str, p: &std::path::Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(p).map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", p.display())))
}

impl MqttConfig {
    /// Checks the values (and that TLS files exist and parse).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.host.is_empty() {
            return Err(ConfigError::new("mqtt.host", "must not be empty"));
        }
        if self.port == 0 {
            return Err(ConfigError::new("mqtt.port", "must not be 0"));
        }
        if let Some(id) = &self.client_id
            && (id.is_empty() || id.len() > 128)
        {
            return Err(ConfigError::new(
                "mqtt.client_id",
                "must be 1-128 characters",
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(ConfigError::new("mqtt.password", "needs mqtt.username"));
        }
        if !(5..=3_600).contains(&self.keep_alive_s) {
            return Err(ConfigError::new(
                "mqtt.keep_alive_s",
                "must be between 5 and 3600",
            ));
        }
        if !(16..=1_000_000).contains(&self.channel_capacity) {
            return Err(ConfigError::new(
                "mqtt.channel_capacity",
                "must be between 16 and 1000000",
            ));
        }
        if self.max_packet_bytes < 2048 {
            return Err(ConfigError::new(
                "mqtt.max_packet_bytes",
                "must be at least 2048",
            ));
        }
        self.backoff.validate("mqtt.backoff")?;
        if let Some(t) = &self.tls {
            let ca = read("mqtt.tls.ca_file", &t.ca_file)?;
            if rustls_pemfile::certs(&mut ca.as_slice()).next().is_none() {
                return Err(ConfigError::new(
                    "mqtt.tls.ca_file",
                    "no PEM certificate in the file",
                ));
            }
            match (&t.client_cert_file, &t.client_key_file) {
                (Some(c), Some(k)) => {
                    let c = read("mqtt.tls.client_cert_file", c)?;
                    if rustls_pemfile::certs(&mut c.as_slice()).next().is_none() {
                        return Err(ConfigError::new(
                            "mqtt.tls.client_cert_file",
                            "no PEM certificate in the file",
                        ));
                    }
                    let k = read("mqtt.tls.client_key_file", k)?;
                    if !matches!(rustls_pemfile::private_key(&mut k.as_slice()), Ok(Some(_))) {
                        return Err(ConfigError::new(
                            "mqtt.tls.client_key_file",
                            "no PEM private key in the file",
                        ));
                    }
                }
                (None, None) => {}
                (Some(_), None) => {
                    return Err(ConfigError::new(
                        "mqtt.tls.client_key_file",
                        "needed with client_cert_file",
                    ));
                }
                (None, Some(_)) => {
                    return Err(ConfigError::new(
                        "mqtt.tls.client_cert_file",
                        "needed with client_key_file",
                    ));
                }
            }
        }
        Ok(())
    }

    /// rumqttc options for a connection with `client_id` (TLS, credentials,
    /// keep-alive, packet size).
    pub fn options(&self, client_id: &str) -> Result<MqttOptions, ConfigError> {
        let mut o = MqttOptions::new(client_id, &self.host, self.port);
        o.set_keep_alive(Duration::from_secs(self.keep_alive_s));
        o.set_max_packet_size(self.max_packet_bytes, self.max_packet_bytes);
        if let Some(u) = &self.username {
            o.set_credentials(
                u,
                self.password
                    .as_ref()
                    .map(|p| p.expose().to_owned())
                    .unwrap_or_default(),
            );
        }
        if let Some(t) = &self.tls {
            let ca = read("mqtt.tls.ca_file", &t.ca_file)?;
            let client_auth = match (&t.client_cert_file, &t.client_key_file) {
                (Some(c), Some(k)) => Some((
                    read("mqtt.tls.client_cert_file", c)?,
                    read("mqtt.tls.client_key_file", k)?,
                )),
                _ => None,
            };
            o.set_transport(Transport::Tls(TlsConfiguration::Simple {
                ca,
                alpn: None,
                client_auth,
            }));
        }
        Ok(o)
    }
}

/// Turns a publish into the judge's input, or says why it is rejected.
pub fn decode(p: &Publish) -> Result<Input, Reject> {
    let Topic::Device {
        site,
        device,
        kind: channel,
    } = Topic::parse(p.topic.as_str()).map_err(Reject::BadTopic)?
    else {
        return Err(Reject::BadTopic(TopicError::Unknown));
    };
    let site = Id::new(site).map_err(|e| Reject::BadTopic(TopicError::BadSite(e)))?;
    let device = Id::new(device).map_err(|e| Reject::BadTopic(TopicError::BadDevice(e)))?;
    let body = match channel {
        TopicKind::Status => {
            Body::Status(DeviceStatus::parse(&p.payload).ok_or(Reject::BadStatus)?)
        }
        TopicKind::Telemetry | TopicKind::Event => {
            let frame = Telemetry::decode(&p.payload).map_err(|e| Reject::Decode(e.problem))?;
            if channel == TopicKind::Event {
                Body::Event(frame)
            } else {
                Body::Telemetry(frame)
            }
        }
    };
    let guarantee = if p.qos == QoS::AtMostOnce {
        Guarantee::Once
    } else {
        Guarantee::UntilAcked { repeat: p.dup }
    };
    Ok(Input {
        site,
        device,
        body,
        guarantee,
    })
}

/// The ingest connection: the client (to acknowledge) and its event loop.
pub fn connect(
    cfg: &MqttConfig,
    client_id: &str,
    ack_capacity: usize,
) -> Result<(AsyncClient, EventLoop), ConfigError> {
    let mut o = cfg.options(client_id)?;
    o.set_clean_session(!cfg.persistent_session);
    o.set_manual_acks(true);
    // Acks travel through the request channel: make room for every frame
    // that can be unacknowledged at once.
    let (client, eventloop) = AsyncClient::new(o, ack_capacity);
    Ok((client, no_delay(eventloop)))
}

/// Turns Nagle's algorithm off on the connection (rumqttc leaves it on):
/// with it, a small packet written while an earlier one is unacknowledged
/// waits for the peer's (delayed) TCP ACK, up to 40 ms, which is what a
/// stream of PUBACKs and alarm publishes is.
pub fn no_delay(mut eventloop: EventLoop) -> EventLoop {
    let mut n = eventloop.network_options();
    n.set_tcp_nodelay(true);
    eventloop.set_network_options(n);
    eventloop
}

/// What ingest is connected to.
#[derive(Debug)]
pub struct Links {
    /// The inputs, to the pipeline.
    pub tx: mpsc::Sender<Inbound>,
    /// This source's number in the pipeline's receipts.
    pub source: usize,
    /// Every receipt up to this one is committed (from the pipeline).
    pub committed: watch::Receiver<u64>,
    /// The link state, for the pipeline and embedders.
    pub link: LinkTx,
    /// Messages fully handled (rejected here, or committed).
    pub handled: Arc<AtomicU64>,
    /// The gateway's metrics.
    pub metrics: Metrics,
    /// Lab mode ([`crate::lab`]): take clock ticks on [`lab::TICK_TOPIC`]
    /// and publish the pipeline's acknowledgements of them, from here.
    pub lab_acks: Option<mpsc::Receiver<TickAck>>,
}

/// A publish waiting for its acknowledgement: its receipt (0: rejected
/// here, acknowledge in turn) and what the PUBACK needs.
#[derive(Debug)]
struct Pending {
    receipt: u64,
    ack: Publish,
}

/// Polls the connection until `shutdown`, feeding inputs to the pipeline
/// and acknowledging what it committed. After `shutdown` it keeps polling
/// for `linger` so that the last acknowledgements reach the broker, then
/// disconnects.
pub async fn run(
    cfg: MqttConfig,
    client: AsyncClient,
    mut eventloop: EventLoop,
    links: Links,
    log_interval: Duration,
    shutdown: CancellationToken,
    linger: Duration,
) {
    let Links {
        tx,
        source,
        mut committed,
        link,
        handled,
        metrics,
        mut lab_acks,
    } = links;
    let lab_clock = lab_acks.is_some();
    let mut backoff = Backoff::new(cfg.backoff);
    let mut subs: Vec<SubscribeFilter> = GATEWAY_SUBSCRIPTIONS
        .iter()
        .map(|t| SubscribeFilter::new((*t).to_string(), QoS::AtLeastOnce))
        .collect();
    if lab_clock {
        subs.push(SubscribeFilter::new(
            lab::TICK_TOPIC.to_string(),
            QoS::AtLeastOnce,
        ));
    }
    let watchdog = (cfg.watchdog_s > 0).then(|| Duration::from_secs(cfg.watchdog_s));
    let mut last_msg = tokio::time::Instant::now();
    let mut tx = Some(tx);
    let mut linger_until: Option<tokio::time::Instant> = None;
    let mut limiter = RateLimiter::new(log_interval);
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut next_receipt = 0u64;
    let mut pipeline_open = true;
    // Lab mode: ticks in order with the frames around them.
    let mut ticks = lab_clock.then(Sequencer::new);
    let set_link = |state: State, session: Option<bool>| {
        link.send_if_modified(|l| {
            let before = *l;
            l.state = state;
            if l.first_session_present.is_none() {
                l.first_session_present = session;
            }
            *l != before
        });
        metrics.mqtt_connected.set(i64::from(state != State::Down));
        metrics
            .mqtt_subscribed
            .set(i64::from(state == State::Subscribed));
    };
    // One timer each for the watchdog and the linger, reset as needed (not
    // a new timer per message).
    let far = Duration::from_secs(365 * 24 * 3600);
    let tick = watchdog.unwrap_or(far);
    let dog = tokio::time::sleep(tick);
    tokio::pin!(dog);
    let stop = tokio::time::sleep(far);
    tokio::pin!(stop);
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        flush_acks(&client, &mut pending, *committed.borrow(), &handled);
        if shutdown.is_cancelled() && linger_until.is_none() {
            let until = tokio::time::Instant::now() + linger;
            linger_until = Some(until);
            stop.as_mut().reset(until);
            // What arrives from now on stays the broker's (not judged, not
            // acknowledged: redelivered after the restart).
            tx = None;
        }
        let ev = tokio::select! {
            ev = eventloop.poll() => ev,
            r = committed.changed(), if pipeline_open => {
                // An error: the pipeline ended; nothing more will be committed.
                pipeline_open = r.is_ok();
                continue;
            }
            () = &mut cancelled, if linger_until.is_none() => continue,
            Some(ack) = next_ack(&mut lab_acks) => {
                answer_tick(&client, &ack);
                continue;
            }
            () = &mut stop, if linger_until.is_some() => {
                let _ = client.try_disconnect();
                let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
                set_link(State::Down, None);
                return;
            }
            () = &mut dog, if watchdog.is_some() => {
                if last_msg.elapsed() >= tick {
                    tracing::warn!(silent_s = tick.as_secs(), "mqtt: no message for the watchdog period; reconnecting");
                    metrics.mqtt_disconnects.inc();
                    set_link(State::Down, None);
                    eventloop.clean();
                    last_msg = tokio::time::Instant::now();
                }
                dog.as_mut().reset(last_msg + tick);
                continue;
            }
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                last_msg = tokio::time::Instant::now();
                backoff.reset();
                if lab_clock && ack.session_present {
                    // A session kept from a run without lab mode lacks it.
                    // Ticks are never retained: nothing comes back twice.
                    let c = client.clone();
                    tokio::spawn(async move {
                        if let Err(e) = c.subscribe(lab::TICK_TOPIC, QoS::AtLeastOnce).await {
                            tracing::error!(error = %e, "mqtt: cannot queue the lab clock subscription");
                        }
                    });
                }
                if ack.session_present {
                    tracing::info!(host = %cfg.host, port = cfg.port, session_present = true, "mqtt: connected; the broker kept our session and subscriptions");
                    set_link(State::Subscribed, Some(true));
                } else {
                    tracing::info!(host = %cfg.host, port = cfg.port, session_present = false, "mqtt: connected; subscribing");
                    set_link(State::Connected, Some(false));
                    // From another task: the request channel may be full of
                    // acknowledgements, and only this task (polling) drains it.
                    let (c, s) = (client.clone(), subs.clone());
                    tokio::spawn(async move {
                        if let Err(e) = c.subscribe_many(s).await {
                            tracing::error!(error = %e, "mqtt: cannot queue the subscription");
                        }
                    });
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) if lab_clock && p.topic == lab::TICK_TOPIC => {
                last_msg = tokio::time::Instant::now();
                if p.qos != QoS::AtMostOnce {
                    let mut a = Publish::new("", p.qos, Vec::<u8>::new());
                    a.pkid = p.pkid;
                    pending.push_back(Pending { receipt: 0, ack: a });
                }
                if let Some(seq) = ticks.as_mut() {
                    match seq.tick(&p.payload) {
                        Ok(due) => forward_ticks(due, seq, &tx, &metrics, &mut limiter).await,
                        Err(e) => refuse_tick(e, seq, &p.payload, &client, &metrics, &mut limiter),
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                last_msg = tokio::time::Instant::now();
                metrics.frames_received.inc();
                // Lab mode counts live messages (not the retained copies a
                // subscription brings, not re-deliveries) for the ticks.
                let live = !p.retain && !p.dup;
                let ack = (p.qos != QoS::AtMostOnce).then(|| {
                    let mut a = Publish::new("", p.qos, Vec::<u8>::new());
                    a.pkid = p.pkid;
                    a
                });
                match decode(&p) {
                    Ok(input) => {
                        let receipt = ack.as_ref().map(|_| {
                            next_receipt += 1;
                            next_receipt
                        });
                        if let (Some(r), Some(ack)) = (receipt, ack) {
                            pending.push_back(Pending { receipt: r, ack });
                        }
                        let arrival = Arrival {
                            input,
                            receipt: receipt.map(|seq| Receipt { source, seq }),
                        };
                        if let Some(t) = &tx {
                            // Blocks when the pipeline is full: back-pressure.
                            if t.send(arrival.into()).await.is_err() {
                                tx = None;
                            }
                        }
                    }
                    Err(r) => {
                        metrics.reject(r.as_str());
                        log_reject(&mut limiter, r, &p);
                        match ack {
                            Some(ack) => pending.push_back(Pending { receipt: 0, ack }),
                            None => {
                                handled.fetch_add(1, Ordering::Release);
                            }
                        }
                    }
                }
                if live && let Some(seq) = ticks.as_mut() {
                    let due = seq.frame();
                    forward_ticks(due, seq, &tx, &metrics, &mut limiter).await;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                use rumqttc::SubscribeReasonCode as R;
                if s.return_codes.iter().any(|c| matches!(c, R::Failure)) {
                    tracing::error!(codes = ?s.return_codes, "mqtt: the broker refused a subscription (check its ACL)");
                } else {
                    set_link(State::Subscribed, None);
                }
            }
            Ok(_) => {}
            Err(e) => {
                set_link(State::Down, None);
                metrics.mqtt_disconnects.inc();
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, attempt = backoff.attempts(), retry_in_ms = delay.as_millis() as u64, "mqtt: connection lost");
                if linger_until.is_some() {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }
}

/// Lab mode: the pipeline's next acknowledgement of a tick (never, without
/// lab mode).
async fn next_ack(acks: &mut Option<mpsc::Receiver<TickAck>>) -> Option<TickAck> {
    match acks {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Lab mode: hands the ticks now due to the pipeline, behind every frame
/// received before them; the pipeline acknowledges each once applied
/// (what the driver publishes after that is judged on the new time).
async fn forward_ticks(
    due: Vec<Tick>,
    seq: &Sequencer,
    tx: &Option<mpsc::Sender<Inbound>>,
    metrics: &Metrics,
    limiter: &mut RateLimiter,
) {
    for t in due {
        // Shutting down: the driver hears nothing and stops.
        let Some(tx) = tx else { return };
        let received = seq.received();
        let tick = Inbound::Clock {
            now_ms: t.now_ms,
            frames: received,
        };
        if tx.send(tick).await.is_err() {
            return;
        }
        metrics
            .lab_clock_ticks
            .with_label_values(&["applied"])
            .inc();
        if received > t.frames
            && let Some(suppressed) = limiter.check("lab_clock_frames_ahead")
        {
            tracing::warn!(
                now_ms = t.now_ms,
                frames = t.frames,
                received,
                suppressed,
                "lab clock: more device messages received than the driver published before this tick (another publisher on the broker?); the run is not deterministic"
            );
        }
    }
}

/// Lab mode: counts, logs and answers a refused tick.
fn refuse_tick(
    e: TickError,
    seq: &Sequencer,
    payload: &[u8],
    client: &AsyncClient,
    metrics: &Metrics,
    limiter: &mut RateLimiter,
) {
    metrics
        .lab_clock_ticks
        .with_label_values(&[e.as_str()])
        .inc();
    if let Some(suppressed) = limiter.check("lab_clock_refused") {
        let shown = String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned();
        tracing::warn!(reason = e.as_str(), error = %e, payload = %shown, driven_ms = seq.last_ms(), suppressed, "lab clock: tick refused");
    }
    answer_tick(
        client,
        &TickAck {
            now_ms: seq.last_ms().unwrap_or(0),
            frames: seq.received(),
            alarms: 0,
            rejected: Some(e.as_str().to_string()),
        },
    );
}

/// Publishes a tick's answer; never awaits the request channel in the
/// polling task (only it drains the channel): when it is full, a task
/// waits for room.
fn answer_tick(client: &AsyncClient, ack: &TickAck) {
    let payload = ack.encode();
    if let Err(rumqttc::ClientError::TryRequest(_)) =
        client.try_publish(lab::ACK_TOPIC, QoS::AtLeastOnce, false, payload.clone())
    {
        let c = client.clone();
        tokio::spawn(async move {
            let _ = c
                .publish(lab::ACK_TOPIC, QoS::AtLeastOnce, false, payload)
                .await;
        });
    }
}

/// Hands the acknowledgements of committed (or rejected) publishes to the
/// client, in order, as far as its request channel has room. Never
/// awaited: only this task drains that channel (by polling).
fn flush_acks(
    client: &AsyncClient,
    pending: &mut VecDeque<Pending>,
    committed: u64,
    handled: &AtomicU64,
) {
    while let Some(p) = pending.front() {
        if p.receipt > committed {
            return;
        }
        match client.try_ack(&p.ack) {
            Ok(()) => {}
            Err(rumqttc::ClientError::TryRequest(_)) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot acknowledge (the broker will redeliver)");
            }
        }
        if p.receipt == 0 {
            handled.fetch_add(1, Ordering::Release);
        }
        pending.pop_front();
    }
}

fn log_reject(limiter: &mut RateLimiter, r: Reject, p: &Publish) {
    let Some(suppressed) = limiter.check(r.as_str()) else {
        return;
    };
    let payload = String::from_utf8_lossy(&p.payload[..p.payload.len().min(160)]).into_owned();
    match r {
        Reject::Decode(_) => {
            let detail = Telemetry::decode(&p.payload)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            tracing::warn!(reason = r.as_str(), topic = %p.topic, error = %detail, %payload, suppressed, "frame rejected");
        }
        Reject::BadTopic(e) => {
            tracing::warn!(reason = r.as_str(), topic = %p.topic, error = %e, suppressed, "message rejected");
        }
        _ => {
            tracing::warn!(reason = r.as_str(), topic = %p.topic, %payload, suppressed, "frame rejected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, payload: &str, qos: QoS, dup: bool) -> Publish {
        let mut p = Publish::new(topic, qos, payload.as_bytes().to_vec());
        p.dup = dup;
        p
    }

    #[test]
    fn publishes_become_transport_neutral_inputs() {
        let frame =
            r#"{"device":"gas-1","kind":"gas","seq":3,"ts_ms":0,"readings":{"lel_pct":1.0}}"#;
        let i = decode(&publish(
            "sites/s1/devices/gas-1/telemetry",
            frame,
            QoS::AtLeastOnce,
            true,
        ))
        .unwrap();
        assert_eq!((i.site.as_str(), i.device.as_str()), ("s1", "gas-1"));
        assert!(matches!(i.body, Body::Telemetry(ref f) if f.seq == 3));
        assert_eq!(i.guarantee, Guarantee::UntilAcked { repeat: true });
        let i = decode(&publish(
            "sites/s1/devices/gas-1/event",
            frame,
            QoS::AtMostOnce,
            false,
        ))
        .unwrap();
        assert!(matches!(i.body, Body::Event(_)));
        assert_eq!(i.guarantee, Guarantee::Once);
        let i = decode(&publish(
            "sites/s1/devices/gas-1/status",
            " offline\n",
            QoS::AtLeastOnce,
            false,
        ))
        .unwrap();
        assert_eq!(i.body, Body::Status(DeviceStatus::Offline));
    }

    #[test]
    fn what_does_not_decode_says_why() {
        let reason = |t: &str, p: &str| {
            decode(&publish(t, p, QoS::AtLeastOnce, false))
                .unwrap_err()
                .as_str()
        };
        assert_eq!(
            reason("sites/s1/devices/bad.id/telemetry", "{}"),
            "bad_topic"
        );
        assert_eq!(reason("alarms/s1/gas-1", "{}"), "bad_topic");
        assert_eq!(
            reason("sites/s1/devices/gas-1/status", "maybe"),
            "bad_status"
        );
        assert_eq!(
            reason("sites/s1/devices/gas-1/telemetry", "not json"),
            "malformed"
        );
    }
}
