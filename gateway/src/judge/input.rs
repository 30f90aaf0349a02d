//! What every input source hands the judge: a device's frame or status,
//! already decoded, with what the source promises about delivering it
//! again. MQTT (`ingest`), the Modbus poller (`modbus`) and any later
//! source (a GB/T 26875.3 transmission listener, a DTU in reverse
//! connection) build these; the judge never sees a topic, a payload or a
//! register.

use anquan_protocol::{DeviceStatus, Id, Telemetry};

/// One input for the judge.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The site the source says the device belongs to (an MQTT topic's
    /// site, a poller's configured site).
    pub site: Id,
    /// The device the source speaks for (an MQTT topic's device, a
    /// configured Modbus device); a frame naming another is rejected.
    pub device: Id,
    /// What the device reported.
    pub body: Body,
    /// What the source does with an input the gateway never acknowledged.
    pub guarantee: Guarantee,
}

/// What a device reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A periodic report.
    Telemetry(Telemetry),
    /// A report sent at once (local alarm, fault, button, tamper).
    Event(Telemetry),
    /// Connected or disconnected (MQTT last will, failed Modbus polls).
    Status(DeviceStatus),
}

/// What the source does with an input the gateway did not acknowledge.
///
/// It decides whether the input's alarms may leave before the input is
/// committed (the fast lane): only an input that comes back after a crash
/// can be judged again into the same transitions under the same ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    /// Delivered again, in order, until acknowledged after the commit (MQTT
    /// QoS 1 and 2 on a persistent session). `repeat` is the source's mark
    /// that this copy may have been delivered before (MQTT DUP).
    UntilAcked {
        /// May be a repeat.
        repeat: bool,
    },
    /// Delivered once: lost if the gateway stops before the commit (MQTT
    /// QoS 0, a Modbus poll's reading).
    Once,
}

impl Guarantee {
    /// May this copy have been delivered before?
    pub fn repeat(self) -> bool {
        matches!(self, Self::UntilAcked { repeat: true })
    }
}
