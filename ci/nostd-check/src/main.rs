//! Runs the device-side code paths with no std and no allocator, and checks
//! the results: the wire contract, the rules, and a gas detector running the
//! real firmware on in-file HAL implementations through a leak and an
//! outage. Exit code 0 = correct; anything else names the failed check.
#![no_std]
#![no_main]

use core::cell::Cell;
use core::convert::Infallible;

use anquan_edge_rules::{DeviceState, defaults};
use anquan_firmware::hal::EpochClock;
use anquan_firmware::kinds::gas::{GasConfig, GasDetector};
use anquan_firmware::modbus::{self, decode_input_registers, map_for};
use anquan_firmware::mqtt::{Publish, PublishError, Transport};
use anquan_firmware::{Device, DeviceConfig, Hal};
use anquan_protocol::{AlarmState, DeviceKind, Id, Level, Metric, Telemetry, TopicKind, Topic};
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorType, OutputPin};
use embedded_hal::i2c::{self, I2c};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

#[link(name = "c")]
unsafe extern "C" {}

const FRAME: &[u8] = br#"{"device":"gas-0001","kind":"gas","seq":7,"ts_ms":1732300000000,"readings":{"lel_pct":55.0,"co_ppm":3.0},"faults":[]}"#;

fn check() -> Result<(), i32> {
    // Wire contract: decode, encode, decode again.
    let frame = Telemetry::decode(FRAME).map_err(|_| 10)?;
    if frame.kind != DeviceKind::Gas || frame.seq != 7 || frame.readings.get(Metric::LelPct) != Some(55.0) {
        return Err(11);
    }
    let mut buf = [0u8; 1024];
    let n = frame.encode(&mut buf).map_err(|_| 12)?;
    if Telemetry::decode(&buf[..n]).map_err(|_| 13)? != frame {
        return Err(14);
    }
    // Bad input is a typed error, not a crash.
    if Telemetry::decode(b"{\"device\":\"a/b\"}").is_ok() {
        return Err(15);
    }
    // Rules: 55 %LEL is red at once under the defaults; then offline.
    let rules = defaults::for_kind(DeviceKind::Gas);
    let mut state = DeviceState::new(0);
    let t = rules.evaluate(&mut state, &frame.readings, &frame.faults, 15_000);
    if t.len() != 1 || t[0].level != Level::Red || t[0].state != AlarmState::Raised || t[0].rule != "gas.lel" {
        return Err(20);
    }
    // Silent for the default (4G) offline delay.
    let after = u64::from(defaults::OFFLINE_AFTER_MS);
    if !rules.tick(&mut state, 15_000 + after - 1).is_empty() {
        return Err(21);
    }
    let t = rules.tick(&mut state, 15_000 + after);
    if t.len() != 1 || t[0].rule != "gas.offline" {
        return Err(21);
    }
    // Working hours: Monday 07:00-19:00 (+08:00). Silent from Monday 19:00,
    // nothing overnight; raised the offline delay after 07:00 on Tuesday.
    const MON: u64 = 1_732_464_000_000;
    const H: u64 = 3_600_000;
    let mut hours = anquan_edge_rules::Hours::new(8 * 60).map_err(|_| 22)?;
    hours.push(7 * 60, 19 * 60).map_err(|_| 22)?;
    hours.push(1440 + 7 * 60, 1440 + 19 * 60).map_err(|_| 22)?;
    let mut rules = rules;
    rules.set_hours(hours);
    let mut state = DeviceState::new(MON + 19 * H);
    if !rules.tick(&mut state, MON + 31 * H + after - 1).is_empty() {
        return Err(23);
    }
    if rules.tick(&mut state, MON + 31 * H + after).len() != 1 {
        return Err(24);
    }
    Ok(())
}

// ---- A firmware scenario on tiny in-file HAL implementations ----------

/// The gas concentration the simulated pellistor sees, %LEL.
struct Air {
    lel: Cell<f32>,
}

/// An ADS1115 answering the firmware's I2C traffic: the config register
/// (pointer 1) and the conversion register (pointer 0); a single-shot
/// conversion completes at once. AIN0-AIN1 carries the bridge (1250 uV per
/// %LEL at +-0.256 V full scale), AIN2 the CO amplifier at its zero (0.5 V
/// at +-4.096 V).
struct Adc<'a> {
    air: &'a Air,
    pointer: u8,
    config: u16,
    conversion: i16,
}

impl i2c::ErrorType for Adc<'_> {
    type Error = i2c::ErrorKind;
}

impl I2c for Adc<'_> {
    fn transaction(&mut self, address: u8, ops: &mut [i2c::Operation<'_>]) -> Result<(), Self::Error> {
        if address != 0x48 {
            return Err(i2c::ErrorKind::NoAcknowledge(i2c::NoAcknowledgeSource::Address));
        }
        for op in ops {
            match op {
                i2c::Operation::Write(bytes) => {
                    self.pointer = bytes.first().copied().unwrap_or(0) & 3;
                    if self.pointer == 1 && bytes.len() == 3 {
                        let v = u16::from_be_bytes([bytes[1], bytes[2]]);
                        self.config = v | 0x8000;
                        if v & 0x8000 != 0 {
                            let uv = match (v >> 12) & 7 {
                                0 => self.air.lel.get() * 1250.0,
                                6 => 500_000.0,
                                _ => 0.0,
                            };
                            let fsr = if (v >> 9) & 7 == 5 { 256_000.0 } else { 4_096_000.0 };
                            // An odd LSB of noise, as a real converter has.
                            let noise = (self.conversion & 1) as f32;
                            self.conversion = (uv * 32_768.0 / fsr + noise) as i16;
                        }
                    }
                }
                i2c::Operation::Read(buf) => {
                    let v = if self.pointer == 0 { self.conversion as u16 } else { self.config };
                    let [h, l] = v.to_be_bytes();
                    if let [a, b, ..] = buf {
                        *a = h;
                        *b = l;
                    }
                }
            }
        }
        Ok(())
    }
}

struct NoWait;
impl DelayNs for NoWait {
    fn delay_ns(&mut self, _: u32) {}
}

/// A buzzer that counts its switch-ons.
struct Buzzer<'a> {
    on: &'a Cell<bool>,
    rises: &'a Cell<u32>,
}
impl ErrorType for Buzzer<'_> {
    type Error = Infallible;
}
impl OutputPin for Buzzer<'_> {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.on.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        if !self.on.get() {
            self.rises.set(self.rises.get() + 1);
        }
        self.on.set(true);
        Ok(())
    }
}

/// A link that decodes every frame with the contract's strict decoder and
/// checks the seq sequence as it arrives.
struct Link {
    up: bool,
    next_seq: u32,
    frames: u32,
    events: u32,
    statuses: u32,
    bad: u32,
    last_lel: f32,
}

impl Transport for Link {
    fn session(&mut self) -> Option<u32> {
        self.up.then_some(1)
    }
    fn publish(&mut self, m: &Publish<'_>) -> Result<(), PublishError> {
        if !self.up {
            return Err(PublishError::NotConnected);
        }
        match Topic::parse(m.topic) {
            Ok(Topic::Device { kind: TopicKind::Status, .. }) => self.statuses += 1,
            Ok(Topic::Device { kind, device: "gas-0001", site: "s1" }) => match Telemetry::decode(m.payload) {
                Ok(t) if t.seq == self.next_seq && t.dropped == 0 => {
                    self.next_seq += 1;
                    self.frames += 1;
                    if kind == TopicKind::Event {
                        self.events += 1;
                    }
                    self.last_lel = t.readings.get(Metric::LelPct).unwrap_or(-1.0);
                }
                _ => self.bad += 1,
            },
            _ => self.bad += 1,
        }
        Ok(())
    }
}

fn firmware() -> Result<(), i32> {
    let air = Air { lel: Cell::new(0.0) };
    let (on, rises) = (Cell::new(false), Cell::new(0));
    let adc = Adc { air: &air, pointer: 0, config: 0x8583, conversion: 0 };
    let detector = GasDetector::new(adc, NoWait, GasConfig::default());
    let hal = Hal::new(detector)
        .with_buzzer(Buzzer { on: &on, rises: &rises })
        .with_clock(EpochClock { epoch_ms: 1_732_300_000_000 });
    let (Ok(site), Ok(id)) = (Id::new("s1"), Id::new("gas-0001")) else {
        return Err(30);
    };
    let mut device = Device::new(DeviceConfig::new(site, id), hal).map_err(|_| 31)?;
    let mut link = Link { up: true, next_seq: 0, frames: 0, events: 0, statuses: 0, bad: 0, last_lel: 0.0 };
    // A leak rising 2 %LEL/s for 30 s; the link is down from 10 s to 5 min.
    for s in 0..330u64 {
        air.lel.set((2 * s.min(30)) as f32);
        link.up = !(10..300).contains(&s);
        device.step(s * 1_000, &mut link);
        if s == 299 && device.outbox().len() < 20 {
            return Err(32);
        }
    }
    // Median of 3, then gas.lel: orange (20 %LEL) at 11 s, red (50 %LEL) at 26 s.
    if device.alarm_level() != Some(Level::Red) || !on.get() || rises.get() != 1 {
        return Err(33);
    }
    if link.bad != 0 || link.events != 2 || link.statuses != 2 {
        return Err(34);
    }
    if link.frames != device.stats().frames || device.outbox().len() != 0 || link.last_lel != 60.0 {
        return Err(35);
    }
    // The Modbus view of the same state.
    let map = map_for(DeviceKind::Gas);
    let mut regs = [0u16; modbus::MAX_INPUT_REGISTERS];
    let regs = &mut regs[..map.input_len()];
    device.read_input_registers(0, regs).map_err(|_| 36)?;
    let image = decode_input_registers(map, regs).map_err(|_| 37)?;
    if image.seq + 1 != link.next_seq || image.status.level != Some(Level::Red) || !image.status.buzzer {
        return Err(38);
    }
    // A threshold write that breaks hysteresis is refused.
    let red = map.threshold_address("gas.lel").ok_or(39)?;
    if device.write_holding_registers(330_000, red + 6, &[4000, 4500]).is_ok() {
        return Err(40);
    }
    Ok(())
}

// ---- GB/T 26875.3: a fire alarm transmission device's frame ----------

/// "上传传输装置主电源故障", the standard's example: type 21, main power fault.
const GB_FRAME: [u8; 39] = [
    0x40, 0x40, 0x01, 0x00, 0x01, 0x01, 0x20, 0x3A, 0x09, 0x1A, 0x09, 0x0C, 0x79, 0x03, 0x00,
    0x00, 0x00, 0x00, 0x38, 0x5B, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x02, 0x15, 0x01, 0x08,
    0x02, 0x3A, 0x09, 0x1A, 0x09, 0x0C, 0x42, 0x23, 0x23,
];

fn gb26875() -> Result<(), i32> {
    use anquan_protocol::gb26875::{Command, Frame, Object};
    let (frame, used) = Frame::decode(&GB_FRAME).map_err(|_| 50)?;
    if used != GB_FRAME.len() || frame.header.command != Command::Send {
        return Err(51);
    }
    match frame.objects().next() {
        Some(Ok(Object::DeviceStatus { state, .. })) if state.main_power_fault() => {}
        _ => return Err(52),
    }
    let confirm = Frame::new(frame.header.reply(Command::Confirm, frame.header.time), &[]);
    let mut out = [0u8; 64];
    let n = confirm.encode(&mut out).map_err(|_| 53)?;
    match Frame::decode(&out[..n]) {
        Ok((back, 30)) if back.header.destination == frame.header.source => Ok(()),
        _ => Err(54),
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    match check().and_then(|()| firmware()).and_then(|()| gb26875()) {
        Ok(()) => 0,
        Err(code) => code,
    }
}
