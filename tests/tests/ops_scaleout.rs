//! Scale-out on existing engines: two sites, each with its own Mosquitto
//! and gateway; each site broker bridges `alarms/#` (QoS 1, persistent
//! bridge session) to a central Mosquitto with an ordinary Mosquitto
//! `connection` bridge (the config in docs/deployment.md). Alarms raised
//! and cleared at both sites arrive at the central broker exactly once
//! each, with their site and event id.

use std::collections::BTreeMap;
use std::time::Duration;

use anquan_e2e::gateway::{GatewayProcess, Setup};
use anquan_e2e::mqtt::{Publisher, gas_frame, now_ms, telemetry_topic};
use anquan_e2e::services::Mosquitto;

/// The site broker's bridge to the central broker (as documented).
fn bridge_conf(site: &str, central_port: u16) -> String {
    format!(
        "connection {site}-to-central\n\
         address 127.0.0.1:{central_port}\n\
         remote_clientid bridge-{site}\n\
         cleansession false\n\
         bridge_protocol_version mqttv311\n\
         try_private true\n\
         restart_timeout 1 5\n\
         notifications false\n\
         topic alarms/# out 1\n"
    )
}

#[test]
fn two_sites_bridge_their_alarms_to_a_central_broker() {
    let central = Mosquitto::start();
    // The central subscriber first: 2 sites × (raised + cleared).
    let sub = central.subscribe("alarms/#", 4, Duration::from_secs(90));

    let mut sites = Vec::new();
    for site in ["site-a", "site-b"] {
        let broker = Mosquitto::start_with(&bridge_conf(site, central.port()));
        let gw = GatewayProcess::start(&Setup {
            mqtt_port: broker.port(),
            mqtt_alarms: true,
            ..Setup::default()
        });
        sites.push((site, broker, gw));
    }
    for (site, broker, _) in &sites {
        let dev = format!("gas-{site}");
        let mut p = Publisher::connect(broker.port(), &format!("devs-{site}"));
        p.publish(
            &telemetry_topic(site, &dev),
            &gas_frame(&dev, 1, now_ms(), 60.0),
        );
        p.publish(
            &telemetry_topic(site, &dev),
            &gas_frame(&dev, 2, now_ms(), 1.0),
        );
        p.wait_acked(Duration::from_secs(30));
    }

    let lines = sub.lines();
    let logs: Vec<String> = sites.iter().map(|(_, _, g)| g.log()).collect();
    assert_eq!(
        lines.len(),
        4,
        "central got {lines:?}; gateway logs:\n{logs:?}"
    );
    let mut per_site: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let id = v["event_id"].as_str().unwrap().to_string();
        assert!(ids.insert(id.clone()), "duplicate event {id}");
        per_site
            .entry(v["site"].as_str().unwrap().to_string())
            .or_default()
            .push((
                v["level"].as_str().unwrap().to_string(),
                v["state"].as_str().unwrap().to_string(),
            ));
    }
    for site in ["site-a", "site-b"] {
        let events = per_site.get(site).cloned().unwrap_or_default();
        assert_eq!(
            events,
            [
                ("red".to_string(), "raised".to_string()),
                ("red".to_string(), "cleared".to_string())
            ],
            "{site}: {per_site:?}"
        );
    }
}
