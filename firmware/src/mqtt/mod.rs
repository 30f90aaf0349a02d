//! MQTT: the topics and payloads of the wire contract, the small
//! [`Transport`] the device publishes through, and [`client`], an MQTT 3.1.1
//! client of its own for boards whose network module is a transparent byte
//! pipe (a 4G DTU in transparent mode, ESP-AT passthrough, a W5500 socket):
//! [`client::Client`] implements [`Transport`] over any `embedded-io` stream.
//! A board with its own MQTT stack (lwIP, a module's AT MQTT) implements
//! [`Transport`] itself instead.
//!
//! Session duties of the board: connect with the last will from
//! [`last_will`] (`sites/{site}/devices/{device}/status` = `offline`,
//! retained, QoS 1), keep-alive, reconnect. The device publishes the
//! retained `online` status itself at the start of every new session, then
//! its buffered frames, oldest first.

pub mod client;
pub mod codec;

use anquan_protocol::{
    DeviceStatus, EncodeError, Id, MAX_PAYLOAD, MAX_TOPIC_LEN, Telemetry, Topic, TopicKind,
};

/// MQTT quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos {
    /// At most once.
    AtMostOnce,
    /// At least once: the contract's QoS for every device topic.
    AtLeastOnce,
}

/// One message to publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Payload bytes.
    pub payload: &'a [u8],
    /// QoS.
    pub qos: Qos,
    /// Retained on the broker.
    pub retain: bool,
}

/// Why a publish did not happen. The device keeps the frame and tries again
/// on a later step; nothing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The session dropped.
    NotConnected,
    /// The stack cannot take more now (window full, socket buffer full).
    Busy,
    /// Sent, waiting for the broker's PUBACK: offer the same message again
    /// on a later step and it answers `Ok` once acknowledged. Not an error.
    Pending,
}

/// The board's side of MQTT.
pub trait Transport {
    /// The current session: `None` while disconnected, `Some(n)` while
    /// connected, with `n` changing on every new CONNACK (a counter is
    /// fine). A new `n` makes the device publish its `online` status.
    fn session(&mut self) -> Option<u32>;

    /// Publishes one message. Return `Ok` only once the message is safe:
    /// for QoS 1, when the broker's PUBACK arrived, or when the stack has
    /// taken it into a queue that survives until then. The device deletes a
    /// frame from its buffer on `Ok` and keeps it otherwise (at-least-once).
    fn publish(&mut self, message: &Publish<'_>) -> Result<(), PublishError>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn session(&mut self) -> Option<u32> {
        T::session(self)
    }
    fn publish(&mut self, message: &Publish<'_>) -> Result<(), PublishError> {
        T::publish(self, message)
    }
}

/// A device without MQTT (Modbus only): never connected. Frames still go to
/// the buffer, which then drops the oldest as it fills, counting them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoTransport;

impl Transport for NoTransport {
    fn session(&mut self) -> Option<u32> {
        None
    }
    fn publish(&mut self, _: &Publish<'_>) -> Result<(), PublishError> {
        Err(PublishError::NotConnected)
    }
}

/// A topic of the device.
pub fn topic(site: &Id, device: &Id, kind: TopicKind) -> heapless::String<MAX_TOPIC_LEN> {
    Topic::device_topic(site, device, kind)
}

/// The status message as a retained QoS 1 publish: `online` after connect,
/// `offline` as the last will.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusMessage {
    /// `sites/{site}/devices/{device}/status`.
    pub topic: heapless::String<MAX_TOPIC_LEN>,
    /// `online` or `offline`.
    pub status: DeviceStatus,
}

impl StatusMessage {
    /// As a [`Publish`].
    pub fn publish(&self) -> Publish<'_> {
        Publish {
            topic: &self.topic,
            payload: self.status.as_str().as_bytes(),
            qos: Qos::AtLeastOnce,
            retain: true,
        }
    }
}

/// The last will to register at CONNECT.
pub fn last_will(site: &Id, device: &Id) -> StatusMessage {
    StatusMessage {
        topic: topic(site, device, TopicKind::Status),
        status: DeviceStatus::Offline,
    }
}

/// The status published after every CONNACK.
pub fn online(site: &Id, device: &Id) -> StatusMessage {
    StatusMessage {
        topic: topic(site, device, TopicKind::Status),
        status: DeviceStatus::Online,
    }
}

/// Encodes a frame's JSON into `buf` and returns the payload; the topic is
/// `…/event` or `…/telemetry` as `event` says.
pub fn encode_frame<'b>(
    frame: &Telemetry,
    event: bool,
    site: &Id,
    buf: &'b mut [u8; MAX_PAYLOAD],
) -> Result<(heapless::String<MAX_TOPIC_LEN>, &'b [u8]), EncodeError> {
    let n = frame.encode(buf)?;
    let kind = if event {
        TopicKind::Event
    } else {
        TopicKind::Telemetry
    };
    Ok((topic(site, &frame.device, kind), &buf[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anquan_protocol::{DeviceKind, Metric, Readings};

    #[test]
    fn topics_and_status() {
        let s = Id::new("s1").unwrap();
        let d = Id::new("gas-0001").unwrap();
        let will = last_will(&s, &d);
        assert_eq!(will.topic, "sites/s1/devices/gas-0001/status");
        let p = will.publish();
        assert_eq!(
            (p.payload, p.retain, p.qos),
            (&b"offline"[..], true, Qos::AtLeastOnce)
        );
        assert_eq!(online(&s, &d).publish().payload, b"online");
    }

    #[test]
    fn frames_go_to_their_topic_as_contract_json() {
        let s = Id::new("s1").unwrap();
        let mut readings = Readings::new();
        readings.set(Metric::LelPct, 12.5).unwrap();
        let t = Telemetry {
            device: Id::new("gas-0001").unwrap(),
            kind: DeviceKind::Gas,
            seq: 4,
            ts_ms: 0,
            readings,
            faults: Default::default(),
            dropped: 0,
        };
        let mut buf = [0u8; MAX_PAYLOAD];
        let (topic, payload) = encode_frame(&t, true, &s, &mut buf).unwrap();
        assert_eq!(topic, "sites/s1/devices/gas-0001/event");
        assert_eq!(Telemetry::decode(payload).unwrap(), t);
        let (topic, _) = encode_frame(&t, false, &s, &mut buf).unwrap();
        assert_eq!(topic, "sites/s1/devices/gas-0001/telemetry");
        assert_eq!(NoTransport.session(), None);
    }
}
