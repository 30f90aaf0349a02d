//! Whole-frame tests: the standard's example frames (from the transcription
//! cited in the module docs, checksums recomputed), every decode error, a
//! stream with garbage, and the round-trip and corruption properties.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::vec::Vec;

use proptest::prelude::*;

use super::*;

/// 2012-09-26 09:58:32: the frame time of the examples.
const SENT: [u8; 6] = [0x20, 0x3A, 0x09, 0x1A, 0x09, 0x0C];
/// 2012-09-26 09:58:02: the event time of the examples.
const EVENT: [u8; 6] = [0x02, 0x3A, 0x09, 0x1A, 0x09, 0x0C];
/// The device's address, 0x000000000379.
const DEVICE: [u8; 6] = [0x79, 0x03, 0x00, 0x00, 0x00, 0x00];
/// The centre's address, 0x000000015B38.
const CENTRE: [u8; 6] = [0x38, 0x5B, 0x01, 0x00, 0x00, 0x00];

/// Concatenates the parts of a frame.
fn frame(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// "2号10区 感烟探测器 火警": smoke detector at zone 10 point 2 in fire
/// alarm, the standard's first example. 78 bytes.
fn fire_alarm() -> Vec<u8> {
    let mut description = [0x20u8; 31];
    description[30] = 0x00;
    frame(&[
        b"@@",
        &[0x01, 0x00], // serial 1
        &[0x01, 0x01], // version 1.1
        &SENT,
        &DEVICE,
        &CENTRE,
        &[0x30, 0x00],             // data unit: 48 bytes = 2 + 46
        &[0x02],                   // command: send data
        &[0x02, 0x01],             // type 2 component state, 1 object
        &[0x01, 0x01],             // system type 1 (fire alarm system), system address 1
        &[0x28],                   // component type 40 smoke detector
        &[0x0A, 0x00, 0x02, 0x00], // zone 10, point 2
        &[0x02, 0x00],             // state: bit 1 fire alarm (bit 0 clear: test mode)
        &description,
        &EVENT,
        &[0x46], // checksum
        b"##",
    ])
}

/// "上传传输装置主电源故障": the device reports a main power fault (type 21,
/// bit 3). 39 bytes.
fn device_power_fault() -> Vec<u8> {
    frame(&[
        b"@@",
        &[0x01, 0x00],
        &[0x01, 0x01],
        &SENT,
        &DEVICE,
        &CENTRE,
        &[0x09, 0x00], // 2 + 7
        &[0x02],
        &[0x15, 0x01], // type 21, 1 object
        &[0x08],       // bit 3 main power fault
        &EVENT,
        &[0x42],
        b"##",
    ])
}

/// A heartbeat: send data with an empty data unit, at 2012-09-26 08:00:00,
/// serial 5. Checksum by hand: 05+01+01+00+00+08+1A+09+0C+79+03+38+5B+01+02
/// = 0x150 → 0x50.
fn heartbeat() -> Vec<u8> {
    frame(&[
        b"@@",
        &[0x05, 0x00],
        &[0x01, 0x01],
        &[0x00, 0x00, 0x08, 0x1A, 0x09, 0x0C],
        &DEVICE,
        &CENTRE,
        &[0x00, 0x00],
        &[0x02],
        &[0x50],
        b"##",
    ])
}

/// The centre's confirm of serial 1, as in the examples.
fn confirm() -> Vec<u8> {
    frame(&[
        b"@@",
        &[0x01, 0x00],
        &[0x01, 0x01],
        &[0x23, 0x3A, 0x09, 0x1A, 0x09, 0x0C],
        &CENTRE,
        &DEVICE,
        &[0x00, 0x00],
        &[0x03],
        &[0xAB],
        b"##",
    ])
}

fn decode_ok(bytes: &[u8]) -> Frame<'_> {
    let (f, used) = Frame::decode(bytes).unwrap();
    assert_eq!(used, bytes.len());
    f
}

#[test]
fn fire_alarm_example_decodes() {
    let bytes = fire_alarm();
    assert_eq!(bytes.len(), 78);
    let f = decode_ok(&bytes);
    assert_eq!(f.header.serial, 1);
    assert_eq!(f.header.version, Version::V1_1);
    assert_eq!(f.header.command, Command::Send);
    assert_eq!(f.header.source.to_u64(), 0x0379);
    assert_eq!(f.header.destination.to_u64(), 0x01_5B38);
    assert_eq!(f.header.time.second(), 32);
    let objs: Vec<_> = f.objects().collect();
    assert_eq!(objs.len(), 1);
    let Ok(Object::ComponentStatus {
        component,
        state,
        description,
        time,
    }) = objs[0]
    else {
        panic!("{objs:?}");
    };
    assert_eq!(
        component.system,
        SystemId {
            kind: 1,
            address: 1
        }
    );
    assert_eq!(component.kind, 40);
    assert_eq!(
        (component.address.zone(), component.address.point()),
        (10, 2)
    );
    assert!(state.fire_alarm() && !state.fault() && !state.isolated());
    assert_eq!(description.trimmed(), b"");
    assert_eq!(
        (
            time.year(),
            time.month(),
            time.day(),
            time.hour(),
            time.minute(),
            time.second()
        ),
        (2012, 9, 26, 9, 58, 2)
    );
    // Our encoder gives back the same bytes.
    assert_eq!(f.to_vec().unwrap().as_slice(), bytes.as_slice());
    let obj = objs[0].unwrap();
    let mut adu = [0u8; 64];
    let n = encode_objects(2, &[obj], &mut adu).unwrap();
    assert_eq!(&adu[..n], f.adu);
}

#[test]
fn device_state_example_decodes() {
    let bytes = device_power_fault();
    let f = decode_ok(&bytes);
    let objs: Vec<_> = f.objects().collect();
    assert_eq!(
        objs,
        [Ok(Object::DeviceStatus {
            state: DeviceState::MAIN_POWER_FAULT,
            time: TimeTag::from_bytes(EVENT).unwrap(),
        })]
    );
}

#[test]
fn heartbeat_has_no_objects() {
    let bytes = heartbeat();
    let f = decode_ok(&bytes);
    assert_eq!(f.header.serial, 5);
    assert_eq!(f.header.command, Command::Send);
    assert!(f.adu.is_empty());
    assert_eq!(f.objects().count(), 0);
}

#[test]
fn confirm_and_deny_match_the_examples() {
    let bytes = fire_alarm();
    let f = decode_ok(&bytes);
    let at = TimeTag::from_bytes([0x23, 0x3A, 0x09, 0x1A, 0x09, 0x0C]).unwrap();
    let reply = Frame::new(f.header.reply(Command::Confirm, at), &[]);
    let mut out = [0u8; 64];
    let n = reply.encode(&mut out).unwrap();
    assert_eq!(&out[..n], confirm().as_slice());
    let deny = Frame::new(f.header.reply(Command::Deny, at), &[]);
    let n = deny.encode(&mut out).unwrap();
    let mut expected = confirm();
    expected[26] = 0x06;
    expected[27] = 0xAE;
    assert_eq!(&out[..n], expected.as_slice());
}

#[test]
fn query_and_response_examples() {
    // "读传输装置状态": request (4), type 81, one object, reserved byte 0.
    let request = frame(&[
        b"@@",
        &[0x01, 0x00],
        &[0x01, 0x01],
        &SENT,
        &CENTRE,
        &DEVICE,
        &[0x03, 0x00],
        &[0x04],
        &[0x51, 0x01, 0x00],
        &[0xFE],
        b"##",
    ]);
    let f = decode_ok(&request);
    assert_eq!(f.header.command, Command::Request);
    assert_eq!(
        f.objects().collect::<Vec<_>>(),
        [Ok(Object::Unknown {
            type_code: 81,
            count: 1,
            data: &[0]
        })]
    );
    // The answer (5) carries a type 21 object, like sent data.
    let mut response = device_power_fault();
    response[26] = 0x05;
    response[36] = 0x45;
    let f = decode_ok(&response);
    assert_eq!(f.header.command, Command::Response);
    assert!(matches!(
        f.objects().next(),
        Some(Ok(Object::DeviceStatus { state, .. })) if state.main_power_fault()
    ));
}

#[test]
fn every_prefix_is_incomplete_with_an_honest_need() {
    let bytes = fire_alarm();
    for n in 0..bytes.len() {
        match Frame::decode(&bytes[..n]) {
            Err(Gb26875Error::Incomplete { need }) => {
                assert!(need >= 1 && n + need <= bytes.len(), "{n}: {need}");
            }
            other => panic!("{n}: {other:?}"),
        }
    }
    // Past the header, `need` is exact.
    assert_eq!(
        Frame::decode(&bytes[..40]),
        Err(Gb26875Error::Incomplete { need: 38 })
    );
}

#[test]
fn each_error_is_named() {
    let good = fire_alarm();
    let with = |i: usize, b: u8| {
        let mut v = good.clone();
        v[i] = b;
        v
    };
    assert_eq!(Frame::decode(b"x"), Err(Gb26875Error::BadStart));
    assert_eq!(Frame::decode(&with(1, b'#')), Err(Gb26875Error::BadStart));
    assert_eq!(
        Frame::decode(&with(good.len() - 1, b'@')),
        Err(Gb26875Error::BadEnd)
    );
    assert_eq!(
        Frame::decode(&with(good.len() - 3, 0x47)),
        Err(Gb26875Error::Checksum {
            expected: 0x46,
            got: 0x47
        })
    );
    assert_eq!(
        Frame::decode(&with(31, 0x29)), // smoke → ion smoke detector
        Err(Gb26875Error::Checksum {
            expected: 0x47,
            got: 0x46
        })
    );
    // Length 1025 (0x0401): rejected at once, not waited for.
    let mut long = with(24, 0x01);
    long[25] = 0x04;
    assert_eq!(Frame::decode(&long), Err(Gb26875Error::TooLong(1025)));
    assert_eq!(
        Frame::decode(&with(26, 0)),
        Err(Gb26875Error::BadCommand(0))
    );
    assert_eq!(
        Frame::decode(&with(26, 7)),
        Err(Gb26875Error::BadCommand(7))
    );
    assert_eq!(
        Frame::decode(&with(26, 0x80)),
        Err(Gb26875Error::BadCommand(0x80))
    );
    assert_eq!(Frame::decode(&with(4, 2)), Err(Gb26875Error::BadVersion(2)));
    assert_eq!(Frame::decode(&with(6, 60)), Err(Gb26875Error::BadTime));
    assert_eq!(Frame::decode(&with(10, 13)), Err(Gb26875Error::BadTime));
    // A shorter declared length moves the end: the end check fails.
    assert_eq!(Frame::decode(&with(24, 0x2F)), Err(Gb26875Error::BadEnd));

    // Object-level errors, with valid checksums.
    let header = decode_ok(&good).header;
    let mut out = [0u8; 128];
    let cut = &decode_ok(&good).adu[..40];
    let n = Frame::new(header, cut).encode(&mut out).unwrap();
    let f = decode_ok(&out[..n]);
    assert_eq!(
        f.objects().next(),
        Some(Err(Gb26875Error::TruncatedObject { type_code: 2 }))
    );
    let mut bad_time = decode_ok(&good).adu.to_vec();
    bad_time[45] = 0; // the object's day
    let n = Frame::new(header, &bad_time).encode(&mut out).unwrap();
    assert_eq!(
        decode_ok(&out[..n]).objects().next(),
        Some(Err(Gb26875Error::BadTime))
    );
}

#[test]
fn stream_with_garbage_yields_every_frame() {
    let mut stream = Vec::new();
    stream.extend_from_slice(b"\x00junk@");
    stream.extend_from_slice(&fire_alarm());
    stream.extend_from_slice(b"@@@garbage##");
    stream.extend_from_slice(&heartbeat());
    stream.extend_from_slice(&device_power_fault());
    stream.extend_from_slice(&confirm()[..10]); // cut off
    let mut rest = stream.as_slice();
    let mut serials = Vec::new();
    loop {
        match Frame::decode(rest) {
            Ok((f, used)) => {
                serials.push(f.header.serial);
                rest = &rest[used..];
            }
            Err(e) if e.is_incomplete() => break,
            Err(_) => {
                let skip = resync(rest);
                assert!(skip >= 1);
                rest = &rest[skip..];
            }
        }
    }
    assert_eq!(serials, [1, 5, 1]);
    assert_eq!(rest, &confirm()[..10]);
}

#[test]
fn resync_keeps_a_possible_start() {
    assert_eq!(resync(b""), 0);
    assert_eq!(resync(b"x"), 1);
    assert_eq!(resync(b"@"), 1);
    assert_eq!(resync(b"ab@"), 2);
    assert_eq!(resync(b"@@@x"), 1);
    assert_eq!(resync(b"a@b@@"), 3);
    assert_eq!(find_start(b"a@b@@"), Some(3));
    assert_eq!(find_start(b"@"), None);
}

#[test]
fn a_simulator_builds_a_fire_alarm() {
    let time = TimeTag::new(25, 3, 1, 12, 0, 0).unwrap();
    let obj = Object::ComponentStatus {
        component: ComponentId {
            system: SystemId {
                kind: 1,
                address: 1,
            },
            kind: 40,
            address: ComponentAddress::new(3, 17),
        },
        state: ComponentState::NORMAL | ComponentState::FIRE_ALARM,
        description: Description::new(b"B1 corridor"),
        time,
    };
    let mut adu = [0u8; MAX_ADU_LEN];
    let n = encode_objects(2, &[obj], &mut adu).unwrap();
    let header = Header {
        serial: 9,
        version: Version::V1_1,
        time,
        source: Address::from_u64(0x0379),
        destination: Address::from_u64(0x01_5B38),
        command: Command::Send,
    };
    let bytes = Frame::new(header, &adu[..n]).to_vec().unwrap();
    assert_eq!(bytes.len(), 30 + 48);
    let f = decode_ok(&bytes);
    assert_eq!(f.objects().collect::<Vec<_>>(), [Ok(obj)]);
}

// ---- properties ----

fn time_tag() -> impl Strategy<Value = TimeTag> {
    (0u8..=99, 1u8..=12, 1u8..=28, 0u8..=23, 0u8..=59, 0u8..=59)
        .prop_map(|(y, mo, d, h, mi, s)| TimeTag::new(y, mo, d, h, mi, s).unwrap())
}

fn header() -> impl Strategy<Value = Header> {
    (
        any::<u16>(),
        any::<u8>(),
        time_tag(),
        any::<[u8; 6]>(),
        any::<[u8; 6]>(),
        1u8..=6,
    )
        .prop_map(|(serial, user, time, s, d, c)| Header {
            serial,
            version: Version { main: 1, user },
            time,
            source: Address(s),
            destination: Address(d),
            command: Command::from_code(c).unwrap(),
        })
}

fn component() -> impl Strategy<Value = ComponentId> {
    (any::<[u8; 3]>(), any::<u32>()).prop_map(|([k, a, c], addr)| ComponentId {
        system: SystemId {
            kind: k,
            address: a,
        },
        kind: c,
        address: ComponentAddress(addr),
    })
}

/// One object of each decoded type; the type picks the whole data unit.
fn object(type_code: u8) -> BoxedStrategy<Object<'static>> {
    let sys = any::<[u8; 2]>().prop_map(|[kind, address]| SystemId { kind, address });
    match type_code {
        1 => (sys, any::<u16>(), time_tag())
            .prop_map(|(system, s, time)| Object::SystemStatus {
                system,
                state: SystemState(s),
                time,
            })
            .boxed(),
        2 => (component(), any::<u16>(), any::<[u8; 31]>(), time_tag())
            .prop_map(|(component, s, d, time)| Object::ComponentStatus {
                component,
                state: ComponentState(s),
                description: Description(d),
                time,
            })
            .boxed(),
        3 => (component(), any::<u8>(), any::<i16>(), time_tag())
            .prop_map(|(component, kind, value, time)| Object::AnalogValue {
                component,
                kind,
                value,
                time,
            })
            .boxed(),
        4 => (sys, any::<[u8; 2]>(), time_tag())
            .prop_map(|(system, [o, operator], time)| Object::SystemOperation {
                system,
                operation: SystemOperation(o),
                operator,
                time,
            })
            .boxed(),
        5 => (sys, any::<[u8; 2]>())
            .prop_map(|(system, [major, minor])| Object::SystemSoftwareVersion {
                system,
                major,
                minor,
            })
            .boxed(),
        8 => (sys, time_tag())
            .prop_map(|(system, time)| Object::SystemTime { system, time })
            .boxed(),
        21 => (any::<u8>(), time_tag())
            .prop_map(|(s, time)| Object::DeviceStatus {
                state: DeviceState(s),
                time,
            })
            .boxed(),
        24 => (any::<[u8; 2]>(), time_tag())
            .prop_map(|([o, operator], time)| Object::DeviceOperation {
                operation: DeviceOperation(o),
                operator,
                time,
            })
            .boxed(),
        25 => any::<[u8; 2]>()
            .prop_map(|[major, minor]| Object::DeviceSoftwareVersion { major, minor })
            .boxed(),
        _ => time_tag()
            .prop_map(|time| Object::DeviceTime { time })
            .boxed(),
    }
}

fn data_unit() -> impl Strategy<Value = (u8, Vec<Object<'static>>)> {
    prop::sample::select(&[1u8, 2, 3, 4, 5, 8, 21, 24, 25, 28][..]).prop_flat_map(|t| {
        // At most 22 objects keeps every type within 1024 bytes.
        (Just(t), prop::collection::vec(object(t), 0..=22))
    })
}

proptest! {
    #[test]
    fn encode_then_decode_is_identity((t, objs) in data_unit(), header in header()) {
        let mut adu = [0u8; MAX_ADU_LEN];
        let n = encode_objects(t, &objs, &mut adu).unwrap();
        let frame = Frame::new(header, &adu[..n]);
        let bytes = frame.to_vec().unwrap();
        let (back, used) = Frame::decode(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back, frame);
        let decoded: Vec<_> = back.objects().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(decoded, objs);
    }

    #[test]
    fn a_corrupted_byte_is_caught(
        (t, objs) in data_unit(),
        header in header(),
        at in any::<prop::sample::Index>(),
        delta in 1u8..=255,
    ) {
        let mut adu = [0u8; MAX_ADU_LEN];
        let n = encode_objects(t, &objs, &mut adu).unwrap();
        let mut bytes = Frame::new(header, &adu[..n]).to_vec().unwrap();
        let i = at.index(bytes.len());
        bytes[i] = bytes[i].wrapping_add(delta);
        // A changed length can, by chance, land on another "##" with a
        // matching sum; everything else is caught.
        if let Ok((f, used)) = Frame::decode(&bytes) {
            prop_assert!(i == 24 || i == 25, "byte {} corrupted yet decoded", i);
            let again = f.to_vec().unwrap();
            prop_assert_eq!(&again[..], &bytes[..used]);
            for obj in f.objects() {
                let _ = obj;
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1200)) {
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match Frame::decode(rest) {
                Ok((f, used)) => {
                    for obj in f.objects() { let _ = obj; }
                    rest = &rest[used..];
                }
                Err(e) if e.is_incomplete() => break,
                Err(_) => rest = &rest[resync(rest)..],
            }
        }
    }

    #[test]
    fn mangled_valid_frames_never_panic(
        (t, objs) in data_unit(),
        header in header(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        // Random bytes rarely begin with "@@"; start from a real frame so
        // the deep paths (length, end, checksum, objects) are exercised.
        let mut adu = [0u8; MAX_ADU_LEN];
        let n = encode_objects(t, &objs, &mut adu).unwrap();
        let mut bytes = Frame::new(header, &adu[..n]).to_vec().unwrap().to_vec();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            match Frame::decode(rest) {
                Ok((f, used)) => {
                    prop_assert!(used >= MIN_FRAME_LEN && used <= rest.len());
                    for obj in f.objects() { let _ = obj; }
                    rest = &rest[used..];
                }
                Err(Gb26875Error::Incomplete { need }) => {
                    prop_assert!(need >= 1);
                    break;
                }
                Err(_) => rest = &rest[resync(rest)..],
            }
        }
    }

    #[test]
    fn arbitrary_data_units_never_panic_and_round_trip(adu in prop::collection::vec(any::<u8>(), 0..300)) {
        let it = Objects::new(&adu);
        let t = it.type_code();
        let objs: Result<Vec<_>, _> = it.collect();
        if let (Some(t), Ok(objs)) = (t, objs) {
            let mut out = [0u8; 600];
            let n = encode_objects(t, &objs, &mut out).unwrap();
            prop_assert_eq!(&out[..n], adu.as_slice());
        }
    }
}
