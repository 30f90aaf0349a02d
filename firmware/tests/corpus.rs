//! Replays the `modbus_registers` and `device_links` fuzz seed corpora and
//! every committed fuzz regression through the properties the fuzz targets
//! check (fuzz/fuzz_targets/modbus_registers.rs, device_links.rs), so a
//! crash found once stays fixed without libFuzzer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fs;
use std::path::Path;

use anquan_firmware::DeviceConfig;
use anquan_firmware::modbus::rtu::{RtuConfig, RtuSlave, Served, crc16};
use anquan_firmware::mqtt::client::{Client, Config};
use anquan_firmware::mqtt::codec::decode;
use anquan_firmware::mqtt::{Publish, Qos, Transport};
use anquan_firmware::sim::rigs::GasRig;
use anquan_protocol::Id;
use embedded_io::{ErrorType, Read, ReadReady, Write};

use anquan_firmware::modbus::{
    decode_holding_registers, decode_input_registers, encode_input_registers, map_for,
};
use anquan_protocol::DeviceKind;

const KINDS: [DeviceKind; 4] = [
    DeviceKind::Gas,
    DeviceKind::Electrical,
    DeviceKind::WaterPressure,
    DeviceKind::Crane,
];

fn property(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let map = map_for(KINDS[usize::from(pick & 3)]);
    let regs: Vec<u16> = rest
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    if pick & 4 != 0 {
        let _ = decode_holding_registers(map, &regs);
        return;
    }
    let Ok(image) = decode_input_registers(map, &regs) else {
        return;
    };
    let mut out = vec![0u16; map.input_len()];
    encode_input_registers(map, &image, &mut out).expect("a decoded image encodes");
    assert_eq!(decode_input_registers(map, &out).expect("decodes"), image);
}

/// Runs `check` on every committed input of fuzz target `target`; returns
/// how many there were.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name() == ".keep" {
                continue;
            }
            check(&fs::read(e.path()).unwrap());
            seen += 1;
        }
    }
    seen
}

#[test]
fn modbus_register_corpus_and_regressions() {
    let seen = replay("modbus_registers", property);
    assert!(seen >= 8, "the seed corpus is missing ({seen} inputs)");
}

/// A byte pipe: what the client wrote, what the broker queued for it.
#[derive(Default)]
struct Pipe {
    incoming: VecDeque<u8>,
}
impl ErrorType for Pipe {
    type Error = Infallible;
}
impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        while n < buf.len() {
            let Some(b) = self.incoming.pop_front() else {
                break;
            };
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
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// The device_links property: the MQTT decoder and client, or the RTU
/// slave on a real device's maps, never panic; the slave answers only
/// whole frames for its unit with a right CRC. Returns the answers.
fn device_links(data: &[u8]) -> usize {
    let Some((&pick, rest)) = data.split_first() else {
        return 0;
    };
    if pick & 1 == 0 {
        for start in 0..rest.len().min(64) {
            if let Ok(Some((_, used))) = decode(&rest[start..]) {
                assert_eq!(
                    decode(&rest[start..start + used]).map(|p| p.map(|x| x.1)),
                    Ok(Some(used))
                );
            }
        }
        let mut c: Client<'_, Pipe> =
            Client::new(Pipe::default(), Config::new("gas-1", "s/status"));
        let msg = Publish {
            topic: "s/t",
            payload: b"{}",
            qos: Qos::AtLeastOnce,
            retain: false,
        };
        for (i, chunk) in rest.chunks(5).enumerate() {
            c.io().incoming.extend(chunk);
            c.poll(i as u64 * 700);
            let _ = c.publish(&msg);
        }
        return 0;
    }
    let rig = GasRig::new();
    let mut device = rig
        .device(DeviceConfig::new(
            Id::new("s1").unwrap(),
            Id::new("gas-1").unwrap(),
        ))
        .unwrap();
    let mut slave = RtuSlave::new(RtuConfig {
        unit: 1,
        baud: 9_600,
    });
    let diagnostics = [7u16; 8];
    let mut out = Vec::new();
    let mut t = 0u64;
    let mut answers = 0;
    let mut check = |out: &mut Vec<u8>| {
        if !out.is_empty() {
            assert!(out.len() >= 5 && out[0] == 1, "{out:?}");
            let (body, crc) = out.split_at(out.len() - 2);
            assert_eq!(crc16(body).to_le_bytes(), [crc[0], crc[1]]);
            out.clear();
            answers += 1;
        }
    };
    let mut pauses = 0u32;
    let mut bytes = rest.iter().copied().chain([0xFE]);
    while let Some(b) = bytes.next() {
        let byte = match b {
            0xFE => {
                t += 10_000;
                pauses += 1;
                if !pauses.is_multiple_of(8) {
                    let mut served = Served {
                        device: &mut device,
                        now_ms: t / 1000,
                        diagnostics: &diagnostics,
                    };
                    let _ = slave.poll(t, &mut served, &mut out);
                    check(&mut out);
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
        let mut served = Served {
            device: &mut device,
            now_ms: t / 1000,
            diagnostics: &diagnostics,
        };
        let _ = slave.poll(t, &mut served, &mut out);
        check(&mut out);
        slave.on_byte(byte, t);
    }
    answers
}

#[test]
fn device_links_corpus_and_regressions() {
    let answers = std::cell::Cell::new(0);
    let seen = replay("device_links", |d| {
        answers.set(answers.get() + device_links(d))
    });
    assert!(seen >= 14, "the seed corpus is missing ({seen} inputs)");
    // The RTU seeds reach the answer path (reads, writes, exceptions).
    assert!(answers.get() >= 10, "{} answers", answers.get());
}
