//! The part models.

use std::sync::{Arc, Mutex};

use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_hal::i2c::{self, I2c, NoAcknowledgeSource};
use embedded_hal::spi::{self, Operation, SpiDevice};

use super::{Noise, lock};
use crate::drivers::ads1115;
use crate::drivers::max31865::{RtdConfig, fault_bits};
use crate::drivers::scl3300::{self, cmd, response};
use crate::drivers::ssi::SsiConfig;

// ---------------------------------------------------------------- ADS1115

#[derive(Debug)]
struct AdsState {
    address: u8,
    /// AIN0..AIN3, µV to GND.
    inputs: [i32; 4],
    pointer: u8,
    config: u16,
    conversion: i16,
    noise: Noise,
    failing: bool,
}

/// An ADS1115: four inputs set in µV; single-shot conversions complete at
/// once (the driver's wait is the board's time, not the simulator's).
#[derive(Debug, Clone)]
pub struct Ads1115Sim(Arc<Mutex<AdsState>>);

impl Ads1115Sim {
    /// At `address`, inputs at 0 V, ±1 LSB noise.
    pub fn new(address: u8) -> Self {
        Self(Arc::new(Mutex::new(AdsState {
            address,
            inputs: [0; 4],
            pointer: 0,
            config: ads1115::POWER_ON_CONFIG,
            conversion: 0,
            noise: Noise::new(0x0AD5_1115, 1),
            failing: false,
        })))
    }

    /// Sets input `ain` (0–3) to `uv` µV.
    pub fn set_input_uv(&self, ain: usize, uv: i32) {
        if let Some(v) = lock(&self.0).inputs.get_mut(ain) {
            *v = uv;
        }
    }

    /// Noise amplitude in LSB.
    pub fn set_noise(&self, lsb: i32) {
        lock(&self.0).noise.amplitude = lsb;
    }

    /// No ACK to anything (unplugged, dead).
    pub fn set_failing(&self, failing: bool) {
        lock(&self.0).failing = failing;
    }
}

fn full_scale_uv(pga: u16) -> i64 {
    match pga {
        0 => 6_144_000,
        1 => 4_096_000,
        2 => 2_048_000,
        3 => 1_024_000,
        4 => 512_000,
        _ => 256_000,
    }
}

impl AdsState {
    fn convert(&mut self) {
        let [a0, a1, a2, a3] = self.inputs;
        let uv = match (self.config >> 12) & 0b111 {
            0 => a0 - a1,
            1 => a0 - a3,
            2 => a1 - a3,
            3 => a2 - a3,
            4 => a0,
            5 => a1,
            6 => a2,
            _ => a3,
        };
        let fsr = full_scale_uv((self.config >> 9) & 0b111);
        let code = i64::from(uv) * 32_768 / fsr + i64::from(self.noise.next());
        self.conversion = code.clamp(-32_768, 32_767) as i16;
    }
}

impl i2c::ErrorType for Ads1115Sim {
    type Error = i2c::ErrorKind;
}

impl I2c for Ads1115Sim {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [i2c::Operation<'_>],
    ) -> Result<(), Self::Error> {
        let mut s = lock(&self.0);
        if s.failing || address != s.address {
            return Err(i2c::ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
        }
        for op in operations {
            match op {
                i2c::Operation::Write(bytes) => {
                    let Some((&pointer, data)) = bytes.split_first() else {
                        continue;
                    };
                    s.pointer = pointer & 0b11;
                    if s.pointer == 1 && data.len() >= 2 {
                        let v = u16::from_be_bytes([data[0], data[1]]);
                        s.config = v | 0x8000;
                        if v & 0x8000 != 0 {
                            s.convert();
                        }
                    }
                }
                i2c::Operation::Read(buf) => {
                    let v = match s.pointer {
                        0 => s.conversion as u16,
                        1 => s.config,
                        _ => 0,
                    };
                    for (i, b) in buf.iter_mut().enumerate() {
                        *b = v.to_be_bytes().get(i).copied().unwrap_or(0);
                    }
                }
            }
        }
        Ok(())
    }
}

// --------------------------------------------------------------- MAX31865

/// A probe fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtdFault {
    /// Probe wire broken: full-scale reading.
    Open,
    /// Probe shorted: ~0 Ω.
    Short,
}

#[derive(Debug)]
struct RtdState {
    probe: RtdConfig,
    regs: [u8; 8],
    ohms: f32,
    fault: Option<RtdFault>,
    noise: Noise,
    failing: bool,
}

/// A MAX31865 with a PT probe at a set temperature.
#[derive(Debug, Clone)]
pub struct Max31865Sim(Arc<Mutex<RtdState>>);

/// The error of a failing SPI model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpiFault;

impl spi::Error for SpiFault {
    fn kind(&self) -> spi::ErrorKind {
        spi::ErrorKind::Other
    }
}

impl Max31865Sim {
    /// A converter with `probe` at 20 °C, ±1 LSB noise, unconfigured (as
    /// after power-on).
    pub fn new(probe: RtdConfig) -> Self {
        Self(Arc::new(Mutex::new(RtdState {
            probe,
            regs: [0, 0, 0, 0xFF, 0xFF, 0, 0, 0],
            ohms: probe.resistance(20.0),
            fault: None,
            noise: Noise::new(0x3186_5000, 1),
            failing: false,
        })))
    }

    /// Sets the probe temperature, °C.
    pub fn set_celsius(&self, t: f32) {
        let mut s = lock(&self.0);
        s.ohms = s.probe.resistance(t);
    }

    /// Injects (or clears) a probe fault.
    pub fn set_fault(&self, fault: Option<RtdFault>) {
        lock(&self.0).fault = fault;
    }

    /// Noise amplitude in LSB.
    pub fn set_noise(&self, lsb: i32) {
        lock(&self.0).noise.amplitude = lsb;
    }

    /// Every transfer fails.
    pub fn set_failing(&self, failing: bool) {
        lock(&self.0).failing = failing;
    }
}

impl RtdState {
    /// Latches a conversion into the RTD registers (automatic mode).
    fn convert(&mut self) {
        let config = self.regs[0];
        if config & 0xC0 != 0xC0 {
            // Bias off or not converting: the registers keep their value.
            return;
        }
        let code = match self.fault {
            Some(RtdFault::Open) => 0x7FFF,
            Some(RtdFault::Short) => 3,
            None => {
                let c = i32::from(self.probe.code(self.ohms)) + self.noise.next();
                c.clamp(0, 0x7FFF) as u16
            }
        };
        let high = u16::from_be_bytes([self.regs[3], self.regs[4]]) >> 1;
        let low = u16::from_be_bytes([self.regs[5], self.regs[6]]) >> 1;
        let mut status = 0;
        if code >= high {
            status |= fault_bits::HIGH_THRESHOLD;
        }
        if code <= low {
            status |= fault_bits::LOW_THRESHOLD;
        }
        if self.fault == Some(RtdFault::Open) {
            status |= fault_bits::RTDIN_LOW_FORCE_OPEN;
        }
        self.regs[7] |= status;
        let word = (code << 1) | u16::from(self.regs[7] != 0);
        let [h, l] = word.to_be_bytes();
        self.regs[1] = h;
        self.regs[2] = l;
    }
}

impl spi::ErrorType for Max31865Sim {
    type Error = SpiFault;
}

impl SpiDevice for Max31865Sim {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), SpiFault> {
        let mut s = lock(&self.0);
        if s.failing {
            return Err(SpiFault);
        }
        let mut address: Option<usize> = None;
        let mut write = false;
        for op in operations {
            match op {
                Operation::Write(bytes) => {
                    for &b in bytes.iter() {
                        match address {
                            None => {
                                write = b & 0x80 != 0;
                                address = Some(usize::from(b & 0x07));
                                if !write && b & 0x07 == 1 {
                                    s.convert();
                                }
                            }
                            Some(a) if write => {
                                let a = a & 7;
                                match a {
                                    0 => {
                                        // D1 clears the fault status and self-clears.
                                        if b & 0x02 != 0 {
                                            s.regs[7] = 0;
                                        }
                                        s.regs[0] = b & !0x02 & !0x20;
                                    }
                                    3..=6 => s.regs[a] = b,
                                    _ => {}
                                }
                                address = Some(a + 1);
                            }
                            Some(a) => address = Some(a + 1),
                        }
                    }
                }
                Operation::Read(buf) => {
                    for b in buf.iter_mut() {
                        let a = address.unwrap_or(0) & 7;
                        *b = s.regs[a];
                        address = Some(a + 1);
                    }
                }
                Operation::Transfer(..) | Operation::TransferInPlace(..) => return Err(SpiFault),
                Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

// ------------------------------------------------------------------ HX711

#[derive(Debug)]
struct HxState {
    code: i32,
    latched: u32,
    /// Pulses clocked in the current read; `None` = idle.
    pulses: Option<u8>,
    clock_high: bool,
    bit: bool,
    powered: bool,
    noise: Noise,
}

/// An HX711 whose output code is set directly; [`Self::clock`] and
/// [`Self::data`] are its PD_SCK and DOUT pins.
#[derive(Debug, Clone)]
pub struct Hx711Sim(Arc<Mutex<HxState>>);

/// The HX711 model's PD_SCK input (an output pin for the driver).
#[derive(Debug, Clone)]
pub struct Hx711Clock(Arc<Mutex<HxState>>);

/// The HX711 model's DOUT output (an input pin for the driver).
#[derive(Debug, Clone)]
pub struct Hx711Data(Arc<Mutex<HxState>>);

impl Default for Hx711Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Hx711Sim {
    /// Code 0, ±20 counts of noise.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(HxState {
            code: 0,
            latched: 0,
            pulses: None,
            clock_high: false,
            bit: true,
            powered: true,
            noise: Noise::new(0x0711_0711, 20),
        })))
    }

    /// The PD_SCK pin.
    pub fn clock(&self) -> Hx711Clock {
        Hx711Clock(self.0.clone())
    }

    /// The DOUT pin.
    pub fn data(&self) -> Hx711Data {
        Hx711Data(self.0.clone())
    }

    /// Sets the conversion result (saturated to 24 bits).
    pub fn set_code(&self, code: i32) {
        lock(&self.0).code = code.clamp(-0x80_0000, 0x7F_FFFF);
    }

    /// Noise amplitude in counts.
    pub fn set_noise(&self, counts: i32) {
        lock(&self.0).noise.amplitude = counts;
    }

    /// Unpowered: DOUT stays high, never ready.
    pub fn set_powered(&self, powered: bool) {
        lock(&self.0).powered = powered;
    }
}

impl digital::ErrorType for Hx711Clock {
    type Error = core::convert::Infallible;
}

impl OutputPin for Hx711Clock {
    fn set_high(&mut self) -> Result<(), Self::Error> {
        let mut s = lock(&self.0);
        if !s.clock_high && s.powered {
            let n = match s.pulses {
                None => {
                    // First pulse of a read: latch the conversion.
                    let c = (s.code + s.noise.next()).clamp(-0x80_0000, 0x7F_FFFF);
                    s.latched = (c as u32) & 0xFF_FFFF;
                    0
                }
                Some(n) => n,
            };
            s.bit = if n < 24 {
                s.latched >> (23 - n) & 1 == 1
            } else {
                true
            };
            s.pulses = if n >= 24 { None } else { Some(n + 1) };
        }
        s.clock_high = true;
        Ok(())
    }

    fn set_low(&mut self) -> Result<(), Self::Error> {
        lock(&self.0).clock_high = false;
        Ok(())
    }
}

impl digital::ErrorType for Hx711Data {
    type Error = core::convert::Infallible;
}

impl InputPin for Hx711Data {
    fn is_high(&mut self) -> Result<bool, Self::Error> {
        let s = lock(&self.0);
        Ok(if !s.powered {
            true
        } else if s.pulses.is_some() || s.clock_high {
            s.bit
        } else {
            // Idle: a conversion is always ready at a 1 s sampling period.
            false
        })
    }
    fn is_low(&mut self) -> Result<bool, Self::Error> {
        self.is_high().map(|h| !h)
    }
}

// -------------------------------------------------------------------- SSI

/// A line fault to inject on an SSI encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFault {
    /// Data pair broken or encoder unpowered: all ones.
    Open,
    /// Data line shorted to ground: all zeros.
    Short,
}

#[derive(Debug)]
struct SsiState {
    config: SsiConfig,
    position: u32,
    fault: Option<LineFault>,
}

/// An SSI absolute encoder at a set position.
#[derive(Debug, Clone)]
pub struct SsiSim(Arc<Mutex<SsiState>>);

impl SsiSim {
    /// An encoder with `config`'s frame, at position 0.
    pub fn new(config: SsiConfig) -> Self {
        Self(Arc::new(Mutex::new(SsiState {
            config,
            position: 0,
            fault: None,
        })))
    }

    /// Sets the position (counts).
    pub fn set_position(&self, counts: u32) {
        lock(&self.0).position = counts;
    }

    /// Injects (or clears) a line fault.
    pub fn set_fault(&self, fault: Option<LineFault>) {
        lock(&self.0).fault = fault;
    }
}

impl spi::ErrorType for SsiSim {
    type Error = SpiFault;
}

impl SpiDevice for SsiSim {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), SpiFault> {
        let s = lock(&self.0);
        let frame = match s.fault {
            Some(LineFault::Open) => u32::MAX,
            Some(LineFault::Short) => 0,
            None => s.config.encode(s.position),
        };
        let bytes = frame.to_be_bytes();
        let mut at = 0;
        for op in operations {
            let buf: &mut [u8] = match op {
                Operation::Read(b) | Operation::TransferInPlace(b) => b,
                Operation::Transfer(b, _) => b,
                Operation::Write(_) | Operation::DelayNs(_) => continue,
            };
            for b in buf.iter_mut() {
                *b = bytes.get(at).copied().unwrap_or(0);
                at += 1;
            }
        }
        Ok(())
    }
}

// ----------------------------------------------------------------- SCL3300

#[derive(Debug)]
struct SclState {
    x_deg: f32,
    y_deg: f32,
    error: bool,
    /// Status reads left before start-up completes after a reset.
    starting: u8,
    answer: u32,
    noise: Noise,
}

/// An SCL3300 with set X and Y angles, speaking the off-frame protocol.
#[derive(Debug, Clone)]
pub struct Scl3300Sim(Arc<Mutex<SclState>>);

impl Default for Scl3300Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Scl3300Sim {
    /// Level, powered but not started, ±1 LSB noise.
    pub fn new() -> Self {
        Self(Arc::new(Mutex::new(SclState {
            x_deg: 0.0,
            y_deg: 0.0,
            error: false,
            starting: 1,
            answer: response(0, 0, 0),
            noise: Noise::new(0x0533_3000, 1),
        })))
    }

    /// Sets the axis angles, degrees.
    pub fn set_angles(&self, x_deg: f32, y_deg: f32) {
        let mut s = lock(&self.0);
        s.x_deg = x_deg;
        s.y_deg = y_deg;
    }

    /// Makes the part report an internal error (RS = 11).
    pub fn set_error(&self, error: bool) {
        lock(&self.0).error = error;
    }

    /// Noise amplitude in LSB.
    pub fn set_noise(&self, lsb: i32) {
        lock(&self.0).noise.amplitude = lsb;
    }
}

impl SclState {
    fn angle_raw(&mut self, deg: f32) -> u16 {
        let raw = ((deg * 16_384.0 / 90.0) as i32).saturating_add(self.noise.next());
        raw.clamp(-32_768, 32_767) as i16 as u16
    }

    /// Executes `command` and returns the frame answering it (sent with the
    /// next command).
    fn execute(&mut self, command: u32) -> u32 {
        let [op, dh, dl, crc] = command.to_be_bytes();
        let rs = if self.error {
            scl3300::RS_ERROR
        } else if self.starting > 0 {
            0
        } else {
            scl3300::RS_NORMAL
        };
        if scl3300::crc8(&[op, dh, dl]) != crc {
            return response(op, scl3300::RS_ERROR, 0);
        }
        match command {
            cmd::SW_RESET => {
                self.starting = 1;
                response(op, 0, 0)
            }
            cmd::READ_STATUS => {
                let r = response(op, rs, 0);
                self.starting = self.starting.saturating_sub(1);
                r
            }
            cmd::READ_WHOAMI => response(op, rs, u16::from(scl3300::WHOAMI)),
            cmd::READ_ANG_X => {
                let v = self.angle_raw(self.x_deg);
                response(op, rs, v)
            }
            cmd::READ_ANG_Y => {
                let v = self.angle_raw(self.y_deg);
                response(op, rs, v)
            }
            _ => response(op, rs, u16::from_be_bytes([dh, dl])),
        }
    }
}

impl spi::ErrorType for Scl3300Sim {
    type Error = SpiFault;
}

impl SpiDevice for Scl3300Sim {
    fn transaction(&mut self, operations: &mut [Operation<'_, u8>]) -> Result<(), SpiFault> {
        let mut s = lock(&self.0);
        for op in operations {
            if let Operation::Transfer(rx, tx) = op {
                if tx.len() != 4 || rx.len() != 4 {
                    return Err(SpiFault);
                }
                let command = u32::from_be_bytes([tx[0], tx[1], tx[2], tx[3]]);
                rx.copy_from_slice(&s.answer.to_be_bytes());
                s.answer = s.execute(command);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drivers::ads1115::{Ads1115, Conversion, DataRate, Gain, Mux};
    use crate::drivers::hx711::Hx711;
    use crate::drivers::max31865::Max31865;
    use crate::drivers::scl3300::Scl3300;
    use crate::drivers::ssi::SsiEncoder;
    use crate::sim::NoDelay;

    #[test]
    fn drivers_read_the_models() {
        let ads = Ads1115Sim::new(0x48);
        ads.set_noise(0);
        ads.set_input_uv(2, 1_000_000);
        let mut drv = Ads1115::new(ads.clone(), 0x48);
        let conv = Conversion {
            mux: Mux::Single2,
            gain: Gain::Fs4096,
            rate: DataRate::Sps128,
        };
        assert_eq!(drv.self_test(conv), Ok(()));
        assert_eq!(drv.convert(&mut NoDelay::default(), conv), Ok(8_000));

        let rtd = Max31865Sim::new(RtdConfig::PT100_3WIRE);
        rtd.set_noise(0);
        rtd.set_celsius(85.0);
        let mut drv = Max31865::new(rtd.clone(), RtdConfig::PT100_3WIRE);
        drv.start().unwrap();
        assert!((drv.read_celsius().unwrap() - 85.0).abs() < 0.05);
        rtd.set_fault(Some(RtdFault::Open));
        assert_eq!(
            drv.read_celsius().unwrap_err().fault_code(),
            anquan_protocol::FaultCode::OpenCircuit
        );
        rtd.set_fault(None);
        assert!((drv.read_celsius().unwrap() - 85.0).abs() < 0.05);

        let hx = Hx711Sim::new();
        hx.set_noise(0);
        hx.set_code(-123_456);
        let mut drv = Hx711::new(hx.clock(), hx.data());
        assert_eq!(drv.read(&mut NoDelay::default()), Ok(-123_456));
        assert_eq!(drv.read(&mut NoDelay::default()), Ok(-123_456));

        let enc = SsiSim::new(SsiConfig::MULTI_TURN_25_GRAY);
        enc.set_position(777_777);
        let mut drv = SsiEncoder::new(enc.clone(), SsiConfig::MULTI_TURN_25_GRAY);
        assert_eq!(drv.read(), Ok(777_777));

        let scl = Scl3300Sim::new();
        scl.set_noise(0);
        scl.set_angles(0.3, -0.4);
        let mut drv = Scl3300::new(scl.clone());
        drv.start(&mut NoDelay::default()).unwrap();
        let (x, y) = drv.read_angles().unwrap();
        assert!((x - 0.3).abs() < 0.006 && (y + 0.4).abs() < 0.006);
        scl.set_error(true);
        assert_eq!(drv.read_angles(), Err(scl3300::Error::Status));
    }
}
