//! MQTT ingest with rumqttc: TCP or TLS (rustls), username/password or
//! client certificates, a persistent session (`clean_session = false`, fixed
//! client id) so QoS 1 frames published while the gateway restarts wait in
//! the broker, and manual acknowledgements: a frame is acknowledged only
//! after its effects are committed to the durable buffer (`pipeline`).
//!
//! rumqttc neither resubscribes nor keeps its pending queue across a
//! session the broker forgot, so we subscribe again on every CONNACK.
//! Connection errors back off exponentially. A watchdog reconnects when no
//! message at all arrived for `watchdog_s` (a half-open link).
//!
//! Back-pressure: publishes go to the pipeline through a bounded channel;
//! when it is full this task stops polling the socket, so the broker (and
//! its in-flight window) holds the rest. Nothing piles up in memory.

use std::path::PathBuf;
use std::time::Duration;

use anquan_protocol::GATEWAY_SUBSCRIPTIONS;
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, SubscribeFilter,
    TlsConfiguration, Transport,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::backoff::{Backoff, BackoffConfig};
use crate::config::ConfigError;
use crate::metrics::Metrics;
use crate::secret::Secret;

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

/// One message for the pipeline.
#[derive(Debug)]
pub struct Incoming {
    /// The publish (topic, payload, pkid, QoS, DUP flag).
    pub publish: Publish,
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
    // that can be unacknowledged at once, so acknowledging never waits on
    // the event loop (which may itself wait on the pipeline).
    Ok(AsyncClient::new(o, ack_capacity))
}

/// Polls the connection until `shutdown`, feeding publishes on device
/// topics to `tx`. After `shutdown` it keeps polling for `linger` so that
/// the last acknowledgements reach the broker, then disconnects.
pub async fn run(
    cfg: MqttConfig,
    client: AsyncClient,
    mut eventloop: EventLoop,
    tx: mpsc::Sender<Incoming>,
    metrics: Metrics,
    shutdown: CancellationToken,
    linger: Duration,
) {
    let mut backoff = Backoff::new(cfg.backoff);
    let subs: Vec<SubscribeFilter> = GATEWAY_SUBSCRIPTIONS
        .iter()
        .map(|t| SubscribeFilter::new((*t).to_string(), QoS::AtLeastOnce))
        .collect();
    let watchdog = (cfg.watchdog_s > 0).then(|| Duration::from_secs(cfg.watchdog_s));
    let mut last_msg = tokio::time::Instant::now();
    let mut tx = Some(tx);
    let mut linger_until: Option<tokio::time::Instant> = None;
    loop {
        if shutdown.is_cancelled() && linger_until.is_none() {
            linger_until = Some(tokio::time::Instant::now() + linger);
        }
        let stop =
            linger_until.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        let tick = watchdog.unwrap_or(Duration::from_secs(3600));
        let ev = tokio::select! {
            ev = eventloop.poll() => ev,
            () = shutdown.cancelled(), if linger_until.is_none() => continue,
            () = tokio::time::sleep_until(stop) => {
                let _ = client.try_disconnect();
                let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
                metrics.mqtt_connected.set(0);
                return;
            }
            () = tokio::time::sleep_until(last_msg + tick), if watchdog.is_some() => {
                tracing::warn!(silent_s = tick.as_secs(), "mqtt: no message for the watchdog period; reconnecting");
                metrics.mqtt_disconnects.inc();
                metrics.mqtt_connected.set(0);
                eventloop.clean();
                last_msg = tokio::time::Instant::now();
                continue;
            }
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                metrics.mqtt_connected.set(1);
                metrics.mqtt_subscribed.set(0);
                last_msg = tokio::time::Instant::now();
                tracing::info!(host = %cfg.host, port = cfg.port, session_present = ack.session_present, "mqtt: connected; subscribing");
                backoff.reset();
                // From another task: the request channel may be full of
                // acknowledgements, and only this task (polling) drains it.
                let (c, s) = (client.clone(), subs.clone());
                tokio::spawn(async move {
                    if let Err(e) = c.subscribe_many(s).await {
                        tracing::error!(error = %e, "mqtt: cannot queue the subscription");
                    }
                });
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                last_msg = tokio::time::Instant::now();
                metrics.frames_received.inc();
                if let Some(t) = &tx {
                    // Blocks when the pipeline is full: back-pressure.
                    if t.send(Incoming { publish: p }).await.is_err() {
                        tx = None;
                    }
                }
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                use rumqttc::SubscribeReasonCode as R;
                if s.return_codes.iter().any(|c| matches!(c, R::Failure)) {
                    tracing::error!(codes = ?s.return_codes, "mqtt: the broker refused a subscription (check its ACL)");
                } else {
                    metrics.mqtt_subscribed.set(1);
                }
            }
            Ok(_) => {}
            Err(e) => {
                metrics.mqtt_connected.set(0);
                metrics.mqtt_subscribed.set(0);
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
