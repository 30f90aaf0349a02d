//! Replays the fuzz seed corpus and every committed fuzz regression through
//! the same properties the fuzz targets check (fuzz/fuzz_targets/), so a
//! crash found once stays fixed without libFuzzer.

#![allow(clippy::unwrap_used)] // a test: a failure to read the corpus must fail it

use std::fs;
use std::path::{Path, PathBuf};

use anquan_protocol::gb26875::{Frame, Objects, encode_objects, resync};
use anquan_protocol::{AlarmEvent, DeviceStatus, Id, Telemetry, Topic};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.file_name().is_some_and(|n| n == ".keep") {
                continue;
            }
            let bytes = fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out
}

#[test]
fn telemetry_corpus() {
    let all = inputs("telemetry");
    assert!(all.len() >= 5, "the seed corpus is committed");
    let mut decoded = 0;
    for (path, data) in all {
        let Ok(frame) = Telemetry::decode(&data) else {
            continue;
        };
        decoded += 1;
        assert!(frame.validate().is_ok(), "{}", path.display());
        let bytes = frame.to_vec().unwrap();
        assert_eq!(
            Telemetry::decode(&bytes).unwrap(),
            frame,
            "{}",
            path.display()
        );
    }
    assert!(decoded >= 4);
}

#[test]
fn alarm_event_corpus() {
    let all = inputs("alarm_event");
    assert!(!all.is_empty());
    for (path, data) in all {
        if let Ok(event) = AlarmEvent::decode(&data) {
            let bytes = event.to_vec().unwrap();
            assert_eq!(
                AlarmEvent::decode(&bytes).unwrap(),
                event,
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn topic_corpus() {
    let all = inputs("topic");
    assert!(!all.is_empty());
    for (path, data) in all {
        let _ = DeviceStatus::parse(&data);
        let Ok(s) = std::str::from_utf8(&data) else {
            continue;
        };
        match Topic::parse(s) {
            Ok(Topic::Device { site, device, kind }) => {
                let (site, device) = (Id::new(site).unwrap(), Id::new(device).unwrap());
                assert_eq!(
                    Topic::device_topic(&site, &device, kind).as_str(),
                    s,
                    "{}",
                    path.display()
                );
            }
            Ok(Topic::Alarm { site, device }) => {
                let (site, device) = (Id::new(site).unwrap(), Id::new(device).unwrap());
                assert_eq!(
                    Topic::alarm_topic(&site, &device).as_str(),
                    s,
                    "{}",
                    path.display()
                );
            }
            Err(_) => {}
        }
    }
}

#[test]
fn gb26875_frame_corpus() {
    let all = inputs("gb26875_frame");
    assert!(all.len() >= 5, "the seed corpus is committed");
    let mut frames = 0;
    for (path, data) in all {
        let mut rest = data.as_slice();
        while !rest.is_empty() {
            match Frame::decode(rest) {
                Ok((frame, used)) => {
                    frames += 1;
                    assert_eq!(
                        frame.to_vec().unwrap().as_slice(),
                        &rest[..used],
                        "{}",
                        path.display()
                    );
                    let objects = Objects::new(frame.adu);
                    if let Some(t) = objects.type_code()
                        && let Ok(objs) = objects.collect::<Result<Vec<_>, _>>()
                    {
                        let mut adu = [0u8; 1024];
                        let n = encode_objects(t, &objs, &mut adu).unwrap();
                        assert_eq!(&adu[..n], frame.adu, "{}", path.display());
                    }
                    rest = &rest[used..];
                }
                Err(e) if e.is_incomplete() => break,
                Err(_) => rest = &rest[resync(rest)..],
            }
        }
    }
    assert!(frames >= 8, "{frames} frames in the seed corpus");
}
