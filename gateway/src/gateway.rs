//! Starting and stopping a gateway, in its own process (`anquan-gateway
//! run`) or embedded in another program (the simulator's demo): start it
//! from a [`Config`] and an optional [`Clock`](crate::clock::Clock), get a
//! [`GatewayHandle`] with the alarm events as they happen and a graceful
//! shutdown that flushes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anquan_protocol::AlarmEvent;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{ManualClock, SharedClock, SystemClock, wall_ms};
use crate::config::Config;
use crate::drain::{self, DrainConfig, Inbox, Policy, Tail};
use crate::error::ConfigError;
use crate::forward::http::HttpDest;
use crate::forward::mqtt::MqttDest;
use crate::judge::Judge;
use crate::link::{self, LinkRx};
use crate::metrics::Metrics;
use crate::pipeline::{Links, Pipeline, PipelineConfig};
use crate::store::{Queue, Store, StoreError};
use crate::{api, broker, forward, ingest, rules, sink};

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A configuration problem (names the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The embedded broker did not start.
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
    /// The durable buffer could not be opened.
    #[error(transparent)]
    Buffer(#[from] StoreError),
    /// The API listener could not bind.
    #[error("api.listen: {0}")]
    Api(std::io::Error),
}

/// How long shutdown keeps trying to flush the sink and the forwarders.
const FINAL_FLUSH: Duration = Duration::from_secs(5);

/// A running gateway.
#[derive(Debug)]
pub struct GatewayHandle {
    stop_ingest: CancellationToken,
    stop_drain: CancellationToken,
    pipeline: JoinHandle<bool>,
    front: Vec<JoinHandle<()>>,
    back: Vec<JoinHandle<()>>,
    alarms: broadcast::Sender<AlarmEvent>,
    metrics: Metrics,
    handled: Arc<AtomicU64>,
    api_addr: Option<SocketAddr>,
    mqtt_addr: (String, u16),
    store: Arc<Store>,
    link: LinkRx,
    devices_at_start: usize,
}

/// Starting a gateway.
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Starts a gateway on the real clock, or, with `[lab] clock =
    /// "driven"`, on a clock that ticks on MQTT move ([`crate::lab`]).
    pub async fn start(cfg: Config) -> Result<GatewayHandle, StartError> {
        if cfg.lab.driven() {
            let driven = ManualClock::new(wall_ms());
            return Self::launch(cfg, Arc::new(driven.clone()), Some(driven)).await;
        }
        Self::launch(cfg, Arc::new(SystemClock), None).await
    }

    /// Starts a gateway whose rules run on `clock` (which the embedding
    /// program moves; `[lab] clock = "driven"` is refused).
    pub async fn start_with_clock(
        cfg: Config,
        clock: SharedClock,
    ) -> Result<GatewayHandle, StartError> {
        if cfg.lab.driven() {
            return Err(ConfigError::new(
                "lab.clock",
                "\"driven\" needs the gateway's own clock; a program that brings its own clock moves it itself (use \"system\")",
            )
            .into());
        }
        Self::launch(cfg, clock, None).await
    }

    async fn launch(
        mut cfg: Config,
        clock: SharedClock,
        driven: Option<ManualClock>,
    ) -> Result<GatewayHandle, StartError> {
        // One TLS provider for the process (ring); an embedding program may
        // have installed one already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        cfg.validate()?;
        let rule_file = cfg.rules.load()?;
        if driven.is_some() {
            tracing::warn!(
                tick = crate::lab::TICK_TOPIC,
                ack = crate::lab::ACK_TOPIC,
                "LAB MODE ([lab] clock = \"driven\"): the rules' clock moves only on ticks published on the broker; anyone who can publish there sets this gateway's time. Never use this on a site"
            );
        }
        if cfg.broker.enabled {
            let bc = cfg.broker.clone();
            let addr = tokio::task::spawn_blocking(move || broker::start(&bc))
                .await
                .map_err(|e| ConfigError::new("broker", e.to_string()))??;
            cfg.mqtt.host = addr.ip().to_string();
            cfg.mqtt.port = addr.port();
        }
        let metrics = Metrics::new();
        let alarm_queues = cfg.forward.queues();
        let dir = cfg.gateway.data_dir.clone();
        let bcfg = cfg.buffer.clone();
        let store = Arc::new(
            tokio::task::spawn_blocking(move || Store::open(&dir, &bcfg, &alarm_queues))
                .await
                .map_err(|e| StoreError::Storage(e.to_string()))??,
        );
        if !store.was_clean() {
            tracing::warn!(
                "the previous run did not stop cleanly; resuming from the durable buffer"
            );
        }
        let st = store.clone();
        let records = tokio::task::spawn_blocking(move || st.devices())
            .await
            .map_err(|e| StoreError::Storage(e.to_string()))??;
        let writer = sink::Writer::new(&cfg.sink, &cfg.gateway.data_dir)?;

        let stop_ingest = CancellationToken::new();
        let stop_drain = CancellationToken::new();
        let (alarms, _) = broadcast::channel(4_096);
        let handled = Arc::new(AtomicU64::new(0));
        let busy = Arc::new(AtomicBool::new(false));
        let client_id = cfg
            .mqtt
            .client_id
            .clone()
            .unwrap_or_else(|| format!("anquan-gateway-{}", cfg.gateway.id));
        let ack_capacity = cfg.mqtt.channel_capacity + 2 * cfg.buffer.max_batch + 1_024;
        let (client, eventloop) = ingest::connect(&cfg.mqtt, &client_id, ack_capacity)?;
        let (tx, rx) = mpsc::channel(cfg.mqtt.channel_capacity);
        let (reload_tx, reload_rx) = mpsc::channel(4);
        let (link_tx, link_rx) = link::channel();
        let (mqtt_committed_tx, mqtt_committed) = watch::channel(0u64);
        let (gb_committed_tx, gb_committed) = watch::channel(0u64);

        let mut front = Vec::new();
        let mut back = Vec::new();
        let mut tails = Vec::new();
        let alarm_drain = |queue, policy| DrainConfig {
            queue,
            policy,
            window: forward::LOOKAHEAD,
            linger: Duration::ZERO,
            backoff: cfg.forward.backoff,
            final_flush: FINAL_FLUSH,
        };
        if let Some(h) = &cfg.forward.http {
            let (tail, inbox) = Tail::new(forward::LOOKAHEAD);
            tails.push(tail);
            back.push(tokio::spawn(drain::run(
                HttpDest::new(h)?,
                alarm_drain(
                    Queue::AlarmsHttp,
                    Policy::Alarms {
                        window: h.concurrency,
                        per_chain: 1,
                    },
                ),
                store.clone(),
                inbox,
                None,
                metrics.clone(),
                stop_drain.clone(),
            )));
        }
        if let Some(m) = cfg.forward.mqtt.as_ref().filter(|m| m.enabled) {
            let (tail, inbox) = Tail::new(forward::LOOKAHEAD);
            tails.push(tail);
            let window = usize::from(m.window);
            back.push(tokio::spawn(drain::run(
                MqttDest::new(&cfg.mqtt, m, &client_id, stop_drain.clone())?,
                alarm_drain(
                    Queue::AlarmsMqtt,
                    Policy::Alarms {
                        window,
                        per_chain: window,
                    },
                ),
                store.clone(),
                inbox,
                None,
                metrics.clone(),
                stop_drain.clone(),
            )));
        }
        let sink_wake = Arc::new(Notify::new());
        back.push(tokio::spawn(drain::run(
            sink::SinkDest::new(writer),
            DrainConfig {
                queue: Queue::Points,
                policy: Policy::Batches {
                    max_points: cfg.sink.batch_size,
                },
                window: 4 * cfg.sink.batch_size / 100 + 64,
                linger: Duration::from_millis(cfg.sink.flush_interval_ms),
                backoff: cfg.sink.backoff,
                final_flush: FINAL_FLUSH,
            },
            store.clone(),
            Inbox::wake_only(sink_wake.clone()),
            Some(busy.clone()),
            metrics.clone(),
            stop_drain.clone(),
        )));

        // Modbus devices and transmission devices are declared devices:
        // their frames come from us.
        let mut vcfg = cfg.validate.clone();
        for (_, d) in cfg.sourced_devices() {
            if !vcfg.devices.iter().any(|v| v.id == d.id) {
                vcfg.devices.push(d);
            }
        }
        let mut judge = Judge::new(
            cfg.gateway.id.clone(),
            vcfg,
            rule_file,
            records,
            store.was_clean(),
            clock.now_ms(),
        );
        let devices_at_start = judge.device_count();
        let (sites_tx, sites_rx) = watch::channel(Vec::new());
        judge.publish_sites(sites_tx);
        let log_interval = Duration::from_secs(cfg.log.reject_log_interval_s.max(1));
        let mut pipeline = Pipeline::new(
            judge,
            PipelineConfig {
                max_batch: cfg.buffer.max_batch,
                commit_interval: Duration::from_millis(cfg.buffer.commit_interval_ms),
                commit_idle: Duration::from_millis(cfg.buffer.commit_idle_ms),
                tick_every: Duration::from_millis(cfg.rules.offline_tick_ms),
                log_interval,
            },
            &store,
            clock.clone(),
            metrics.clone(),
        );
        let (lab_acks_tx, lab_acks) = match driven.clone() {
            Some(c) => {
                pipeline = pipeline.with_driven_clock(c);
                let (tx, rx) = mpsc::channel(crate::lab::MAX_HELD_TICKS);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let links = Links {
            rx,
            reload: reload_rx,
            link: link_rx.clone(),
            store: store.clone(),
            // Source 0: MQTT; source 1: GB/T 26875.3 devices.
            receipts: vec![mqtt_committed_tx, gb_committed_tx],
            points: sink_wake,
            alarms: tails,
            subscribers: alarms.clone(),
            handled: handled.clone(),
            busy,
            lab_acks: lab_acks_tx,
        };
        let pipeline = tokio::spawn(pipeline.run(links, stop_ingest.clone()));
        let (dtu_slots, dtu_listener) =
            crate::modbus::dtu::listen::start(&cfg.modbus, metrics.clone(), stop_ingest.clone())
                .await?;
        front.extend(dtu_listener);
        if let Some(g) = &cfg.gb26875 {
            front.push(
                crate::gb26875::listen::start(
                    g,
                    &cfg.gateway.data_dir,
                    crate::gb26875::listen::PipelineLinks {
                        tx: tx.clone(),
                        source: 1,
                        committed: gb_committed,
                    },
                    clock.clone(),
                    metrics.clone(),
                    stop_ingest.clone(),
                )
                .await?,
            );
        }
        front.extend(crate::modbus::poll::spawn(
            &cfg.modbus,
            &dtu_slots,
            tx.clone(),
            clock.clone(),
            metrics.clone(),
            stop_ingest.clone(),
        )?);
        front.push(tokio::spawn(ingest::run(
            cfg.mqtt.clone(),
            client,
            eventloop,
            ingest::Links {
                tx,
                source: 0,
                committed: mqtt_committed,
                link: link_tx,
                handled: handled.clone(),
                metrics: metrics.clone(),
                lab_acks,
            },
            log_interval,
            stop_ingest.clone(),
            Duration::from_millis(300),
        )));
        if let Some(h) = cfg.forward.http.as_ref().filter(|h| h.heartbeat_s > 0) {
            back.push(tokio::spawn(crate::heartbeat::run(
                HttpDest::new(h)?,
                cfg.gateway.id.to_string(),
                h.heartbeat_s,
                crate::heartbeat::Sources {
                    sites: sites_rx,
                    link: link_rx.clone(),
                    store: store.clone(),
                },
                metrics.clone(),
                stop_drain.clone(),
            )));
        }
        back.push(tokio::spawn(rules::watch(
            cfg.rules.clone(),
            reload_tx,
            metrics.clone(),
            stop_drain.clone(),
        )));
        let api_addr = match api::serve(
            cfg.api.clone(),
            metrics.clone(),
            store.clone(),
            stop_drain.clone(),
        )
        .await
        .map_err(StartError::Api)?
        {
            Some((addr, fut)) => {
                back.push(tokio::spawn(fut));
                Some(addr)
            }
            None => None,
        };
        tracing::info!(
            gateway = %cfg.gateway.id,
            mqtt = %format!("{}:{}", cfg.mqtt.host, cfg.mqtt.port),
            api = ?api_addr,
            devices = devices_at_start,
            points_waiting = store.len(Queue::Points),
            "gateway started"
        );
        Ok(GatewayHandle {
            stop_ingest,
            stop_drain,
            pipeline,
            front,
            back,
            alarms,
            metrics,
            handled,
            api_addr,
            mqtt_addr: (cfg.mqtt.host.clone(), cfg.mqtt.port),
            store,
            link: link_rx,
            devices_at_start,
        })
    }
}

impl GatewayHandle {
    /// Alarm events, as they are committed (a slow receiver may lag and
    /// miss some: this is for display; the durable path is the store).
    pub fn subscribe_alarms(&self) -> broadcast::Receiver<AlarmEvent> {
        self.alarms.subscribe()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Waits until the broker acknowledged the gateway's subscriptions, at
    /// most `timeout`; `false` on timeout. An embedder that publishes right
    /// after [`Gateway::start`] must wait for this first: a frame published
    /// before the subscription reaches no one.
    pub async fn wait_subscribed(&self, timeout: Duration) -> bool {
        let mut link = self.link.clone();
        tokio::time::timeout(
            timeout,
            link.wait_for(|l| l.state == link::State::Subscribed),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// MQTT messages fully handled so far (committed and acknowledged, or
    /// rejected and counted).
    pub fn messages_handled(&self) -> u64 {
        self.handled.load(Ordering::Acquire)
    }

    /// Where `/healthz` and `/metrics` listen.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The broker the gateway ingests from (the embedded one when enabled).
    pub fn mqtt_addr(&self) -> (&str, u16) {
        (&self.mqtt_addr.0, self.mqtt_addr.1)
    }

    /// Entries waiting in a durable queue.
    pub fn queue_len(&self, q: Queue) -> u64 {
        self.store.len(q)
    }

    /// Devices known at start (declared plus remembered).
    pub fn devices_at_start(&self) -> usize {
        self.devices_at_start
    }

    /// Whether a front task (ingest or pipeline) has ended by itself.
    pub fn is_failed(&self) -> bool {
        !self.stop_ingest.is_cancelled()
            && (self.pipeline.is_finished() || self.front.iter().any(JoinHandle::is_finished))
    }

    /// Graceful shutdown: stop taking frames, commit and acknowledge what
    /// was taken, then give the sink and the forwarders a few seconds to
    /// flush. What is not flushed stays on disk for the next start.
    pub async fn shutdown(self) {
        self.stop_ingest.cancel();
        for t in self.front {
            let _ = t.await;
        }
        // Everything judged is committed: nothing left early that the
        // store does not hold.
        if self.pipeline.await.unwrap_or(false) {
            let st = self.store.clone();
            match tokio::task::spawn_blocking(move || st.close_cleanly()).await {
                Ok(Ok(())) => {}
                other => tracing::warn!(error = ?other, "cannot record the clean stop"),
            }
        }
        self.stop_drain.cancel();
        for t in self.back {
            let _ = t.await;
        }
        tracing::info!(
            points_waiting = self.store.len(Queue::Points),
            "gateway stopped"
        );
    }
}
