//! GB/T 26875.3 frames as a TCP stream: never panic; every decoded frame's
//! objects, encoded again, give back its data unit byte for byte, and the
//! frame encodes back to the bytes it was decoded from.
#![no_main]

use anquan_protocol::gb26875::{Frame, MAX_ADU_LEN, Object, Objects, encode_objects, resync};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        match Frame::decode(rest) {
            Ok((frame, used)) => {
                assert!(used >= 30 && used <= rest.len());
                check(&frame, &rest[..used]);
                rest = &rest[used..];
            }
            Err(e) if e.is_incomplete() => break,
            Err(_) => {
                let skip = resync(rest);
                assert!(skip >= 1, "resync makes progress");
                rest = &rest[skip..];
            }
        }
    }
});

fn check(frame: &Frame<'_>, wire: &[u8]) {
    let mut out = [0u8; anquan_protocol::gb26875::MAX_FRAME_LEN];
    let n = frame.encode(&mut out).expect("a decoded frame encodes");
    assert_eq!(&out[..n], wire, "frame re-encodes to its bytes");
    let (again, used) = Frame::decode(&out[..n]).expect("our own encoding decodes");
    assert_eq!((again, used), (*frame, n));

    let objects = Objects::new(frame.adu);
    let Some(type_code) = objects.type_code() else {
        return;
    };
    let mut decoded: heapless::Vec<Object<'_>, 256> = heapless::Vec::new();
    for obj in objects {
        let Ok(obj) = obj else {
            return;
        };
        decoded
            .push(obj)
            .expect("at most 255 objects and one Unknown");
    }
    let mut adu = [0u8; MAX_ADU_LEN];
    let n = encode_objects(type_code, &decoded, &mut adu).expect("decoded objects encode");
    assert_eq!(&adu[..n], frame.adu, "objects re-encode to the data unit");
}
