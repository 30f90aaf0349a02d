//! InfluxDB line protocol for our points (DESIGN.md "Time-series layout"):
//! measurement = device kind, tags `site` and `device`, one float field per
//! reading plus the integer field `seq`, time in ms. Alarm events go to
//! measurement `alarm` with tags site, device, rule, level, state and the
//! float fields `value` and `threshold`. No string fields (VictoriaMetrics
//! would store them as 0).
//!
//! Ids and rule ids are restricted to `[A-Za-z0-9_.-]`, so tags need no
//! escaping; floats are finite (the decoder rejects the rest).

use std::fmt::Write as _;

use anquan_protocol::{AlarmEvent, Id, Telemetry};

/// The point of one frame.
pub fn frame(site: &Id, frame: &Telemetry, ts_ms: u64) -> String {
    let mut s = String::with_capacity(64 + frame.readings.len() * 20);
    let _ = write!(
        s,
        "{},site={site},device={} ",
        frame.kind.as_str(),
        frame.device
    );
    for (m, v) in frame.readings.iter() {
        let _ = write!(s, "{}={},", m.as_str(), v);
    }
    let _ = write!(s, "seq={}i {ts_ms}", frame.seq);
    s
}

/// The point of one alarm event.
pub fn alarm(e: &AlarmEvent) -> String {
    format!(
        "alarm,site={},device={},rule={},level={},state={} value={},threshold={} {}",
        e.site,
        e.device,
        e.rule,
        e.level.as_str(),
        e.state.as_str(),
        e.value,
        e.threshold,
        e.ts_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_and_alarm_lines() {
        let f = Telemetry::decode(
            br#"{"device":"gas-0001","kind":"gas","seq":7,"ts_ms":1732300000000,"readings":{"lel_pct":12.5,"co_ppm":3.0}}"#,
        )
        .unwrap();
        let site = Id::new("s1").unwrap();
        assert_eq!(
            frame(&site, &f, 1_732_300_000_123),
            "gas,site=s1,device=gas-0001 lel_pct=12.5,co_ppm=3,seq=7i 1732300000123"
        );
        let e = AlarmEvent::decode(br#"{"event_id":"gw/s1/gas-0001/gas.lel/1","site":"s1","device":"gas-0001","kind":"gas","rule":"gas.lel","level":"red","state":"raised","value":55.0,"threshold":50.0,"ts_ms":1732300000000,"gateway":"gw"}"#).unwrap();
        assert_eq!(
            alarm(&e),
            "alarm,site=s1,device=gas-0001,rule=gas.lel,level=red,state=raised value=55,threshold=50 1732300000000"
        );
    }

    #[test]
    fn tiny_and_huge_floats_stay_plain_decimals() {
        assert_eq!(format!("{}", 1e-7_f32), "0.0000001");
        assert!(!format!("{}", 1e20_f32).contains('e'));
    }
}
