//! Modbus register images of our firmware's maps, as the gateway decodes
//! them after a poll (input registers) and as a device decodes a write
//! (holding registers): never panic; an input image that decodes encodes
//! again, and decodes to the same image.
//!
//! Input: byte 0 picks the map (low 2 bits: gas, electrical, water
//! pressure, crane; bit 2: holding instead of input), the rest are the
//! registers, little-endian u16.
#![no_main]

use anquan_firmware::modbus::{
    decode_holding_registers, decode_input_registers, encode_input_registers, map_for,
};
use anquan_protocol::DeviceKind;
use libfuzzer_sys::fuzz_target;

const KINDS: [DeviceKind; 4] = [
    DeviceKind::Gas,
    DeviceKind::Electrical,
    DeviceKind::WaterPressure,
    DeviceKind::Crane,
];

fuzz_target!(|data: &[u8]| {
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
    let again = decode_input_registers(map, &out).expect("an encoded image decodes");
    assert_eq!(again, image);
});
