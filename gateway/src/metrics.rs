//! Prometheus metrics: one registry per gateway instance (so several
//! gateways can run in one process, as in tests), rendered by `/metrics`.
//!
//! Every name starts with `anquan_gateway_`; README lists them.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric of the gateway.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// MQTT publishes received on device topics.
    pub frames_received: IntCounter,
    /// Frames accepted and fully processed, by topic kind.
    pub frames_processed: IntCounterVec,
    /// Messages rejected, by reason.
    pub rejected: IntCounterVec,
    /// Sequence gaps seen (one per gap).
    pub seq_gaps: IntCounter,
    /// Frames missing according to the gaps.
    pub seq_missing: IntCounter,
    /// Frames the devices report they dropped (`dropped` field).
    pub device_dropped: IntCounter,
    /// Frames whose device clock was off by more than the bound (gateway
    /// time used instead).
    pub clock_skew: IntCounter,
    /// Alarm transitions, by level and state.
    pub alarms: IntCounterVec,
    /// Registered devices, by `state` = online / offline.
    pub devices: IntGaugeVec,
    /// Entries waiting in a durable queue.
    pub queue_depth: IntGaugeVec,
    /// Bytes waiting in a durable queue.
    pub queue_bytes: IntGaugeVec,
    /// Age of the oldest waiting entry, seconds.
    pub queue_oldest_age: prometheus::GaugeVec,
    /// Entries dropped (oldest first) because a queue hit its byte cap.
    pub queue_dropped: IntCounterVec,
    /// 1 while a queue is over its cap and dropping.
    pub queue_overflow: IntGaugeVec,
    /// Time to commit one ingest batch to disk.
    pub commit_seconds: Histogram,
    /// Failed writes to the durable buffer (disk full, I/O errors); ingest
    /// is held back while they last.
    pub buffer_errors: IntCounter,
    /// 1 while the durable buffer cannot be written.
    pub buffer_failing: IntGauge,
    /// Frames per committed batch.
    pub commit_batch: Histogram,
    /// Time of one successful sink write.
    pub sink_write_seconds: Histogram,
    /// Points written to the sink.
    pub sink_points: IntCounter,
    /// Failed sink writes, by kind (connect, http_4xx, http_5xx, ...).
    pub sink_errors: IntCounterVec,
    /// Alarm events delivered, by destination.
    pub forward_sent: IntCounterVec,
    /// Failed delivery attempts, by destination and kind.
    pub forward_errors: IntCounterVec,
    /// Alarm events the far end rejected for good (kept on disk).
    pub forward_dead_letter: IntCounterVec,
    /// Heartbeats to the monitor, by result (`ok`, `failed`).
    pub heartbeats: IntCounterVec,
    /// 1 while a destination answers 401/403 (token or permissions wrong).
    pub forward_unauthorized: IntGaugeVec,
    /// Time from judging (or storing) to delivery confirmation, by
    /// destination.
    pub forward_seconds: HistogramVec,
    /// Alarm events confirmed by the far end before their batch was
    /// committed (the fast lane), by destination.
    pub forward_early: IntCounterVec,
    /// Deliveries in flight, by destination.
    pub forward_in_flight: IntGaugeVec,
    /// 1 while the ingest MQTT connection is up.
    pub mqtt_connected: IntGauge,
    /// 1 once the broker acknowledged the subscriptions of the current
    /// connection (frames published before that may not reach us).
    pub mqtt_subscribed: IntGauge,
    /// MQTT connection losses.
    pub mqtt_disconnects: IntCounter,
    /// Rules file reloads, by result (ok / error).
    pub rules_reloads: IntCounterVec,
    /// Modbus requests sent, by link.
    pub modbus_requests: IntCounterVec,
    /// Modbus request retries, by link.
    pub modbus_retries: IntCounterVec,
    /// Failed Modbus requests, by link and reason (timeout, io, connect,
    /// malformed, exception_<name>).
    pub modbus_errors: IntCounterVec,
    /// Modbus device polls, by link and result (ok / failed).
    pub modbus_polls: IntCounterVec,
    /// Failed polls, by device.
    pub modbus_device_failures: IntCounterVec,
    /// Modbus devices reported offline, by link.
    pub modbus_devices_offline: IntGaugeVec,
    /// Time of one device poll (all its reads).
    pub modbus_poll_seconds: Histogram,
    /// Time the last full cycle over a link's devices took, by link.
    pub modbus_cycle_seconds: prometheus::GaugeVec,
    /// Inbound DTU connections, by result (accepted, replaced, unknown,
    /// malformed, timeout, busy).
    pub dtu_connections: IntCounterVec,
    /// Heartbeat packets a DTU sent between requests, by link.
    pub dtu_heartbeats: IntCounterVec,
    /// Unsolicited bytes (not a heartbeat) discarded before a request, by link.
    pub dtu_discarded_bytes: IntCounterVec,
    /// GB/T 26875.3 connections, by result (accepted, busy, unknown_source,
    /// idle).
    pub gb26875_connections: IntCounterVec,
    /// GB/T 26875.3 connections open now.
    pub gb26875_connections_open: IntGauge,
    /// GB/T 26875.3 frames received, by result (confirmed, denied,
    /// malformed, unknown_source, ignored, unconfirmed).
    pub gb26875_frames: IntCounterVec,
    /// GB/T 26875.3 information objects, by effect (state, ignored, full).
    pub gb26875_objects: IntCounterVec,
    /// `lab_clock_ticks_total{result}`: lab mode only (`[lab] clock =
    /// "driven"`), so on no dashboard.
    pub lab_clock_ticks: IntCounterVec,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, m: T) -> T {
    // Registration fails only on a duplicate name, which is a bug caught by
    // the unit test below.
    let _ = r.register(Box::new(m.clone()));
    m
}

const P: &str = "anquan_gateway_";

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    reg(
        r,
        IntCounter::with_opts(Opts::new(format!("{P}{name}"), help))
            .unwrap_or_else(|_| unreachable_metric()),
    )
}

#[allow(clippy::panic)]
fn unreachable_metric<T>() -> T {
    // Metric names and label names are constants checked by the unit tests.
    panic!("invalid metric definition")
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(
        r,
        IntCounterVec::new(Opts::new(format!("{P}{name}"), help), labels)
            .unwrap_or_else(|_| unreachable_metric()),
    )
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    reg(
        r,
        IntGaugeVec::new(Opts::new(format!("{P}{name}"), help), labels)
            .unwrap_or_else(|_| unreachable_metric()),
    )
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    reg(
        r,
        Histogram::with_opts(HistogramOpts::new(format!("{P}{name}"), help).buckets(buckets))
            .unwrap_or_else(|_| unreachable_metric()),
    )
}

fn latency_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
        0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Self {
        let r = Registry::new();
        let m = Self {
            frames_received: counter(
                &r,
                "frames_received_total",
                "MQTT publishes received on device topics",
            ),
            frames_processed: counter_vec(
                &r,
                "frames_processed_total",
                "Frames accepted and processed, by topic kind",
                &["topic"],
            ),
            rejected: counter_vec(
                &r,
                "rejected_total",
                "Messages rejected, by reason",
                &["reason"],
            ),
            seq_gaps: counter(
                &r,
                "seq_gaps_total",
                "Sequence gaps (frames lost between device and gateway)",
            ),
            seq_missing: counter(
                &r,
                "seq_missing_frames_total",
                "Frames missing according to sequence gaps",
            ),
            device_dropped: counter(
                &r,
                "device_dropped_frames_total",
                "Frames devices report they dropped from their offline buffer",
            ),
            clock_skew: counter(
                &r,
                "clock_skew_total",
                "Frames whose device clock was off by more than validate.max_clock_skew_s",
            ),
            alarms: counter_vec(
                &r,
                "alarms_total",
                "Alarm transitions, by level and state",
                &["level", "state"],
            ),
            devices: gauge_vec(
                &r,
                "devices",
                "Registered devices by state (online/offline)",
                &["state"],
            ),
            queue_depth: gauge_vec(
                &r,
                "queue_depth",
                "Entries waiting in a durable queue",
                &["queue"],
            ),
            queue_bytes: gauge_vec(
                &r,
                "queue_bytes",
                "Bytes waiting in a durable queue",
                &["queue"],
            ),
            queue_oldest_age: reg(
                &r,
                prometheus::GaugeVec::new(
                    Opts::new(
                        format!("{P}queue_oldest_age_seconds"),
                        "Age of the oldest waiting entry",
                    ),
                    &["queue"],
                )
                .unwrap_or_else(|_| unreachable_metric()),
            ),
            queue_dropped: counter_vec(
                &r,
                "queue_dropped_total",
                "Entries dropped oldest-first at the byte cap",
                &["queue"],
            ),
            queue_overflow: gauge_vec(
                &r,
                "queue_overflow",
                "1 while a queue is at its byte cap and dropping",
                &["queue"],
            ),
            commit_seconds: histogram(
                &r,
                "commit_seconds",
                "Time to commit one ingest batch durably",
                latency_buckets(),
            ),
            buffer_errors: counter(
                &r,
                "buffer_errors_total",
                "Failed writes to the durable buffer (ingest held back)",
            ),
            buffer_failing: reg(
                &r,
                IntGauge::new(
                    format!("{P}buffer_failing"),
                    "1 while the durable buffer cannot be written",
                )
                .unwrap_or_else(|_| unreachable_metric()),
            ),
            commit_batch: histogram(
                &r,
                "commit_batch_frames",
                "Inputs per committed batch",
                vec![
                    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
                ],
            ),
            sink_write_seconds: histogram(
                &r,
                "sink_write_seconds",
                "Time of one successful time-series write",
                latency_buckets(),
            ),
            sink_points: counter(
                &r,
                "sink_points_total",
                "Points written to the time-series sink",
            ),
            sink_errors: counter_vec(
                &r,
                "sink_errors_total",
                "Failed time-series writes, by kind",
                &["kind"],
            ),
            forward_sent: counter_vec(
                &r,
                "forward_sent_total",
                "Alarm events delivered, by destination",
                &["dest"],
            ),
            forward_errors: counter_vec(
                &r,
                "forward_errors_total",
                "Failed alarm deliveries, by destination and kind",
                &["dest", "kind"],
            ),
            forward_dead_letter: counter_vec(
                &r,
                "forward_dead_letter_total",
                "Alarm events rejected for good by the far end (kept on disk)",
                &["dest"],
            ),
            heartbeats: {
                let m = counter_vec(
                    &r,
                    "heartbeats_total",
                    "Heartbeats to the monitor, by result",
                    &["result"],
                );
                for v in ["ok", "failed"] {
                    m.with_label_values(&[v]);
                }
                m
            },
            forward_unauthorized: gauge_vec(
                &r,
                "forward_unauthorized",
                "1 while the destination answers 401/403",
                &["dest"],
            ),
            forward_seconds: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        format!("{P}forward_seconds"),
                        "Time from judging the alarm to confirmed delivery",
                    )
                    .buckets(latency_buckets()),
                    &["dest"],
                )
                .unwrap_or_else(|_| unreachable_metric()),
            ),
            forward_early: counter_vec(
                &r,
                "forward_early_total",
                "Alarm events delivered before their batch was committed (fast lane)",
                &["dest"],
            ),
            forward_in_flight: gauge_vec(
                &r,
                "forward_in_flight",
                "Alarm deliveries in flight",
                &["dest"],
            ),
            mqtt_connected: reg(
                &r,
                IntGauge::new(
                    format!("{P}mqtt_connected"),
                    "1 while the ingest MQTT connection is up",
                )
                .unwrap_or_else(|_| unreachable_metric()),
            ),
            mqtt_subscribed: reg(
                &r,
                IntGauge::new(
                    format!("{P}mqtt_subscribed"),
                    "1 once the broker acknowledged the subscriptions of the current connection",
                )
                .unwrap_or_else(|_| unreachable_metric()),
            ),
            mqtt_disconnects: counter(
                &r,
                "mqtt_disconnects_total",
                "Ingest MQTT connection losses",
            ),
            rules_reloads: counter_vec(
                &r,
                "rules_reloads_total",
                "Rules file reloads, by result",
                &["result"],
            ),
            modbus_requests: counter_vec(
                &r,
                "modbus_requests_total",
                "Modbus requests sent, by link",
                &["link"],
            ),
            modbus_retries: counter_vec(
                &r,
                "modbus_retries_total",
                "Modbus request retries, by link",
                &["link"],
            ),
            modbus_errors: counter_vec(
                &r,
                "modbus_errors_total",
                "Failed Modbus requests, by link and reason",
                &["link", "reason"],
            ),
            modbus_polls: counter_vec(
                &r,
                "modbus_polls_total",
                "Modbus device polls, by link and result",
                &["link", "result"],
            ),
            modbus_device_failures: counter_vec(
                &r,
                "modbus_device_failures_total",
                "Failed Modbus polls, by device",
                &["device"],
            ),
            modbus_devices_offline: gauge_vec(
                &r,
                "modbus_devices_offline",
                "Modbus devices reported offline, by link",
                &["link"],
            ),
            modbus_poll_seconds: histogram(
                &r,
                "modbus_poll_seconds",
                "Time of one Modbus device poll (all its reads)",
                latency_buckets(),
            ),
            modbus_cycle_seconds: reg(
                &r,
                prometheus::GaugeVec::new(
                    Opts::new(
                        format!("{P}modbus_cycle_seconds"),
                        "Time the last full poll cycle over a link's devices took",
                    ),
                    &["link"],
                )
                .unwrap_or_else(|_| unreachable_metric()),
            ),
            dtu_connections: counter_vec(
                &r,
                "dtu_connections_total",
                "Inbound DTU connections, by result (accepted, replaced, unknown, malformed, timeout, busy)",
                &["result"],
            ),
            dtu_heartbeats: counter_vec(
                &r,
                "dtu_heartbeats_total",
                "Heartbeat packets received from a DTU between requests, by link",
                &["link"],
            ),
            dtu_discarded_bytes: counter_vec(
                &r,
                "dtu_discarded_bytes_total",
                "Unsolicited bytes from a DTU (not a heartbeat) discarded before a request, by link",
                &["link"],
            ),
            gb26875_connections: counter_vec(
                &r,
                "gb26875_connections_total",
                "GB/T 26875.3 transmission-device connections, by result (accepted, busy, unknown_source, idle)",
                &["result"],
            ),
            gb26875_connections_open: reg(
                &r,
                IntGauge::new(
                    format!("{P}gb26875_connections_open"),
                    "GB/T 26875.3 transmission-device connections open now",
                )
                .unwrap_or_else(|_| unreachable_metric()),
            ),
            gb26875_frames: counter_vec(
                &r,
                "gb26875_frames_total",
                "GB/T 26875.3 frames received, by result (confirmed, denied, malformed, unknown_source, ignored, unconfirmed)",
                &["result"],
            ),
            gb26875_objects: counter_vec(
                &r,
                "gb26875_objects_total",
                "GB/T 26875.3 information objects, by effect (state, ignored, full)",
                &["effect"],
            ),
            lab_clock_ticks: counter_vec(
                &r,
                "lab_clock_ticks_total",
                "Lab mode (driven clock): ticks applied, or refused by reason",
                &["result"],
            ),
            registry: r,
        };
        for s in ["online", "offline"] {
            m.devices.with_label_values(&[s]).set(0);
        }
        m
    }

    /// Counts one rejection.
    pub fn reject(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    /// The number of rejections for `reason` so far.
    pub fn rejected_count(&self, reason: &str) -> u64 {
        self.rejected.with_label_values(&[reason]).get()
    }

    /// Renders the Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_registers_and_renders() {
        let m = Metrics::new();
        m.reject("malformed");
        m.queue_depth.with_label_values(&["points"]).set(3);
        m.forward_seconds
            .with_label_values(&["http"])
            .observe(0.001);
        let text = m.render();
        assert!(text.contains("anquan_gateway_rejected_total{reason=\"malformed\"} 1"));
        assert!(text.contains("anquan_gateway_queue_depth{queue=\"points\"} 3"));
        assert!(text.contains("anquan_gateway_devices{state=\"online\"} 0"));
        // Every family registered (names are unique): scalar metrics show
        // up at once, labelled ones once a label set exists.
        assert!(m.registry.gather().len() >= 15);
        assert_eq!(m.rejected_count("malformed"), 1);
    }
}
