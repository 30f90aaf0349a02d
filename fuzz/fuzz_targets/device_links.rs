//! What the device's own wires receive: bytes from an MQTT broker through a
//! transparent pipe (the MQTT 3.1.1 decoder and the client's session state
//! machine) and bytes on the Modbus RTU line (the slave's framing, CRC and
//! function handling against a real device's register maps). Never panic;
//! the codec's packets re-decode to themselves; the slave only ever
//! answers with a frame whose CRC is right.
//!
//! Input: byte 0 bit 0 picks MQTT (0) or RTU (1); the rest is the stream.
#![no_main]

use std::collections::VecDeque;
use std::convert::Infallible;

use anquan_firmware::DeviceConfig;
use anquan_firmware::modbus::rtu::{RtuConfig, RtuSlave, Served, crc16};
use anquan_firmware::mqtt::client::{Client, Config};
use anquan_firmware::mqtt::codec::decode;
use anquan_firmware::mqtt::{Publish, Qos, Transport};
use anquan_firmware::sim::rigs::GasRig;
use anquan_protocol::Id;
use embedded_io::{ErrorType, Read, ReadReady, Write};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Pipe {
    incoming: VecDeque<u8>,
    written: Vec<u8>,
}
impl ErrorType for Pipe {
    type Error = Infallible;
}
impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        while n < buf.len() {
            let Some(b) = self.incoming.pop_front() else { break };
            buf[n] = b;
            n += 1;
        }
        Ok(n)
    }
}
impl ReadReady for Pipe {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!self.incoming.is_empty())
    }
}
impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

fn mqtt(data: &[u8]) {
    // The decoder alone, at every offset.
    for start in 0..data.len().min(64) {
        if let Ok(Some((_, used))) = decode(&data[start..]) {
            assert!(used <= data.len() - start);
            assert_eq!(decode(&data[start..start + used]).map(|p| p.map(|x| x.1)), Ok(Some(used)));
        }
    }
    // The client fed the stream in small pieces between polls and publishes.
    let mut c: Client<'_, Pipe> = Client::new(Pipe::default(), Config::new("gas-1", "s/status"));
    let msg = Publish { topic: "s/t", payload: b"{}", qos: Qos::AtLeastOnce, retain: false };
    for (i, chunk) in data.chunks(5).enumerate() {
        c.io().incoming.extend(chunk);
        c.poll(i as u64 * 700);
        let _ = c.publish(&msg);
        let _ = c.session();
    }
}

/// The line: 0xFE is a pause of 10 ms (not a byte on the wire), 0xFD sends
/// the next input byte as it is (so 0xFD and 0xFE can be sent too), any
/// other value is a byte 1.146 ms after the previous one (9600 baud).
/// The board polls the slave before every byte, except during every 8th
/// pause (it was busy: the frame that ended is dropped unanswered).
fn rtu(data: &[u8]) {
    let rig = GasRig::new();
    let (Ok(site), Ok(id)) = (Id::new("s1"), Id::new("gas-1")) else { return };
    let Ok(mut device) = rig.device(DeviceConfig::new(site, id)) else { return };
    let mut slave = RtuSlave::new(RtuConfig { unit: 1, baud: 9_600 });
    let diagnostics = [7u16; 8];
    let mut out = Vec::new();
    let mut t = 0u64;
    let mut pauses = 0u32;
    let mut bytes = data.iter().copied();
    while let Some(b) = bytes.next() {
        let byte = match b {
            0xFE => {
                t += 10_000;
                pauses += 1;
                if !pauses.is_multiple_of(8) {
                    let mut served = Served { device: &mut device, now_ms: t / 1000, diagnostics: &diagnostics };
                    let _ = slave.poll(t, &mut served, &mut out);
                    check_answer(&mut out);
                }
                continue;
            }
            0xFD => match bytes.next() {
                Some(b) => b,
                None => break,
            },
            b => b,
        };
        t += 1_146;
        let mut served = Served { device: &mut device, now_ms: t / 1000, diagnostics: &diagnostics };
        let _ = slave.poll(t, &mut served, &mut out);
        check_answer(&mut out);
        slave.on_byte(byte, t);
    }
    let mut served = Served { device: &mut device, now_ms: t / 1000, diagnostics: &diagnostics };
    let _ = slave.poll(t + 10_000, &mut served, &mut out);
    check_answer(&mut out);
}

/// An answer is one whole frame for unit 1 whose CRC checks.
fn check_answer(out: &mut Vec<u8>) {
    if out.is_empty() {
        return;
    }
    assert!(out.len() >= 5 && out[0] == 1, "{out:?}");
    let (body, crc) = out.split_at(out.len() - 2);
    assert_eq!(crc16(body).to_le_bytes(), [crc[0], crc[1]]);
    out.clear();
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    if pick & 1 == 0 {
        mqtt(rest);
    } else {
        rtu(rest);
    }
});
