//! Replays the `modbus_registers` fuzz seed corpus and every committed fuzz
//! regression through the property the fuzz target checks
//! (fuzz/fuzz_targets/modbus_registers.rs), so a crash found once stays
//! fixed without libFuzzer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test

use std::fs;
use std::path::Path;

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

#[test]
fn modbus_register_corpus_and_regressions() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut seen = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz.join(dir).join("modbus_registers")) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_name() == ".keep" {
                continue;
            }
            property(&fs::read(e.path()).unwrap());
            seen += 1;
        }
    }
    assert!(seen >= 8, "the seed corpus is missing ({seen} inputs)");
}
