//! Judging a scenario's messages with the gateway's rule engine alone: the
//! same `edge-rules` rule sets (from the scenario's rules file), the same
//! strict decoding (`anquan-protocol`), the same order (each second the
//! offline check, then that second's messages), but none of the gateway's
//! transport, storage or forwarding.
//!
//! Two uses:
//!
//! * a fast, exact judge for long runs such as the false-alarm budget
//!   ([`crate::budget`]): a simulated day in a second or two, where the
//!   in-process gateway, which commits every batch to disk, takes minutes;
//! * a shadow of the gateway in [`crate::run`]'s in-process runs: it says
//!   when an offline check is due, so the runner waits for the gateway's
//!   check at that second and no other (working hours, planned power-offs
//!   and link types make "due" more than a fixed delay after the last
//!   frame).
//!
//! What it does not model, as the gateway does: frames rejected for reasons
//! other than a bad payload or a duplicate (a site or kind mismatch, an
//! unknown device), and the silence a gateway excuses while its own broker
//! link is down. Scenarios produce neither.

use anquan_edge_rules::{DeviceState, RuleSet, Transition};
use anquan_protocol::{
    AlarmEvent, DeviceKind, DeviceStatus, EventId, Id, Telemetry, Topic, TopicKind,
};

use crate::device::Outgoing;
use crate::scenario::Scenario;

/// The gateway id the judge's alarm events carry.
pub const JUDGE_GATEWAY: &str = "judge";

#[derive(Debug)]
struct Judged {
    id: Id,
    kind: DeviceKind,
    rules: RuleSet,
    /// `None` until the first valid frame registers the device, as on the
    /// gateway.
    state: Option<DeviceState>,
    /// Transitions so far (the `n` of the event ids).
    n: u64,
}

/// The rule engine of one site, fed a scenario's messages.
#[derive(Debug)]
pub struct Judge {
    site: Id,
    gateway: Id,
    devices: Vec<Judged>,
}

impl Judge {
    /// A judge for `scenario`'s devices under its rules file.
    pub fn new(scenario: &Scenario) -> Result<Self, String> {
        let spec = &scenario.spec;
        let site = Id::new(&spec.site).map_err(|e| e.to_string())?;
        let gateway = Id::new(JUDGE_GATEWAY).map_err(|e| e.to_string())?;
        let devices = spec
            .devices
            .iter()
            .map(|d| {
                Ok(Judged {
                    id: Id::new(&d.id).map_err(|e| e.to_string())?,
                    kind: d.kind,
                    rules: scenario.rules.rules_for(&spec.site, d.kind, &d.id),
                    state: None,
                    n: 0,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            site,
            gateway,
            devices,
        })
    }

    fn events(&mut self, index: usize, transitions: &[Transition]) -> Vec<AlarmEvent> {
        let Some(d) = self.devices.get_mut(index) else {
            return Vec::new();
        };
        transitions
            .iter()
            .map(|t| {
                d.n += 1;
                AlarmEvent {
                    event_id: EventId::for_transition(
                        &self.gateway,
                        &self.site,
                        &d.id,
                        &t.rule,
                        d.n,
                    ),
                    site: self.site.clone(),
                    device: d.id.clone(),
                    kind: d.kind,
                    rule: t.rule.clone(),
                    level: t.level,
                    state: t.state,
                    value: t.value,
                    threshold: t.threshold,
                    ts_ms: t.at_ms,
                    gateway: self.gateway.clone(),
                }
            })
            .collect()
    }

    /// The offline checks of every registered device at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Vec<AlarmEvent> {
        let mut out = Vec::new();
        for i in 0..self.devices.len() {
            let d = &mut self.devices[i];
            let Some(state) = &mut d.state else {
                continue;
            };
            let t = d.rules.tick(state, now_ms);
            if !t.is_empty() {
                out.extend(self.events(i, &t));
            }
        }
        out
    }

    /// One message the site sent, handled at `now_ms`.
    pub fn feed(&mut self, o: &Outgoing, now_ms: u64) -> Vec<AlarmEvent> {
        let Ok(Topic::Device { kind, .. }) = Topic::parse(&o.topic) else {
            return Vec::new();
        };
        let Some(d) = self.devices.get_mut(o.device) else {
            return Vec::new();
        };
        let t = match kind {
            TopicKind::Status => {
                let (Some(status), Some(state)) = (DeviceStatus::parse(&o.payload), &mut d.state)
                else {
                    return Vec::new();
                };
                d.rules
                    .status(state, status == DeviceStatus::Online, now_ms)
            }
            TopicKind::Telemetry | TopicKind::Event => {
                // A torn payload fails to decode and a duplicate is refused
                // by the gateway's sequence window: `alive` marks the rest.
                if !o.alive {
                    return Vec::new();
                }
                let Ok(frame) = Telemetry::decode(&o.payload) else {
                    return Vec::new();
                };
                let state = d.state.get_or_insert_with(|| DeviceState::new(now_ms));
                d.rules
                    .evaluate(state, &frame.readings, &frame.faults, now_ms)
            }
        };
        if t.is_empty() {
            Vec::new()
        } else {
            self.events(o.device, &t)
        }
    }
}
