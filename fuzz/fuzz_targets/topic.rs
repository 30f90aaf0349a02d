//! MQTT topics and status payloads: never panic; a parsed device topic is
//! rebuilt byte for byte.
#![no_main]

use anquan_protocol::{DeviceStatus, Id, Topic};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = DeviceStatus::parse(data);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match Topic::parse(s) {
        Ok(Topic::Device { site, device, kind }) => {
            let (site, device) = (Id::new(site).unwrap(), Id::new(device).unwrap());
            assert_eq!(Topic::device_topic(&site, &device, kind).as_str(), s);
        }
        Ok(Topic::Alarm { site, device }) => {
            let (site, device) = (Id::new(site).unwrap(), Id::new(device).unwrap());
            assert_eq!(Topic::alarm_topic(&site, &device).as_str(), s);
        }
        Err(_) => {}
    }
});
