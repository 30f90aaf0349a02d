//! anquan-iot device firmware: what a device maker links into an MCU image.
//!
//! `no_std`, no allocator, no panics on sensor data, every buffer sized at
//! compile time. The same code runs unchanged on a host inside the simulator:
//! hardware is reached only through the [`embedded_hal`] 1.0 traits (plus
//! [`hal::AnalogInput`] for ADC-like reads and [`hal::Clock`] for an optional
//! RTC), and time is passed in, never read.
//!
//! ```text
//! sensors ─embedded-hal─▶ kinds::* (drivers, calibration, fault detection)
//!                           │ Sample (one value or fault per channel)
//!                           ▼
//!                 Device::step(now_ms, transport)
//!   channel pipeline: stuck check ▶ median/EMA filter ▶ fixed-point quantisation
//!   edge-rules (the gateway's RuleSet/DeviceState) ▶ buzzer / relay at once
//!   frames: telemetry every report period, event at once on a transition,
//!           a fault change or the one-key alarm button ▶ outbox (compact ring)
//!   transports: mqtt::Transport (the board's network stack), modbus register maps
//! ```
//!
//! * [`Device`]: the device; [`Device::new`] and [`Device::step`].
//! * [`kinds`]: one driver bundle per device kind, each modelling a real
//!   sensor family (see the module docs for parts and datasheet behaviour).
//! * [`drivers`]: the part drivers (ADS1115, MAX31865, HX711, SSI encoders,
//!   SCL3300, 4–20 mA loops) over embedded-hal.
//! * [`modbus`]: the register map of each kind, as pure encode/decode
//!   functions shared with the gateway's poller and the simulator's server.
//! * [`mqtt`]: topics, frames and the [`mqtt::Transport`] a board implements.
//! * [`outbox`]: the store-and-forward ring of compact frames in RAM, and
//!   the [`outbox::FrameStore`] trait; [`store`]: the same on NOR flash,
//!   surviving power cuts.
//! * [`mqtt::client`]: an MQTT 3.1.1 client over a byte pipe (4G DTU,
//!   ESP-AT passthrough); [`modbus::rtu`]: a Modbus RTU slave on a UART.
//! * `sim` (feature `sim`, std): register-level models of the parts, so a
//!   host program runs the real drivers on simulated physics.

#![no_std]

#[cfg(any(test, feature = "sim"))]
extern crate std;

pub mod calibration;
pub mod channels;
pub mod config;
mod device;
pub mod drivers;
pub mod filter;
pub mod frame;
pub mod hal;
pub mod kinds;
mod math;
pub mod modbus;
pub mod mqtt;
pub mod outbox;
pub mod scale;
pub mod sensors;
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;

pub use calibration::Calibration;
pub use config::{ChannelOverride, ConfigError, DeviceConfig};
pub use device::{Core, DEFAULT_OUTBOX_BYTES, Device, Hal, SELF_TEST_RETRY_MS, Stats, StepOutcome};
pub use frame::Frame;
pub use sensors::{ChannelSample, Sample, Sensors};
