//! Comparing the alarms that arrived with a scenario's expected timeline.
//!
//! Each expected transition (device, rule, level, state, window) takes the
//! first alarm that has not been taken yet and matches it exactly inside
//! the window. What is left over is explained, in this order:
//!
//! * **wrong level**: the same device, rule and state arrived in the window
//!   at another level;
//! * **too late** / **too early**: the same transition arrived, outside the
//!   window;
//! * **missing**: nothing like it arrived;
//! * **unexpected**: an alarm no expectation asked for.

use std::fmt::Write as _;

use crate::run::Observed;
use crate::scenario::Expect;

/// One line of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    /// Arrived as expected.
    Ok {
        /// The expectation.
        expect: Expect,
        /// When it arrived, s.
        at_s: f64,
    },
    /// Arrived in the window at another level.
    WrongLevel {
        /// The expectation.
        expect: Expect,
        /// What arrived.
        got: Observed,
    },
    /// Arrived after the window.
    TooLate {
        /// The expectation.
        expect: Expect,
        /// When it arrived, s.
        at_s: f64,
    },
    /// Arrived before the window.
    TooEarly {
        /// The expectation.
        expect: Expect,
        /// When it arrived, s.
        at_s: f64,
    },
    /// An optional expectation that did not arrive (not a mismatch).
    Absent {
        /// The expectation.
        expect: Expect,
    },
    /// Never arrived.
    Missing {
        /// The expectation.
        expect: Expect,
    },
    /// Arrived, not expected.
    Unexpected {
        /// What arrived.
        got: Observed,
    },
}

impl Finding {
    /// Whether this line is a mismatch.
    pub fn is_mismatch(&self) -> bool {
        !matches!(self, Self::Ok { .. } | Self::Absent { .. })
    }
}

/// The comparison of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Every line, expectations first (in file order), then unexpected alarms.
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// No mismatch.
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(Finding::is_mismatch)
    }

    /// Mismatches.
    pub fn mismatches(&self) -> usize {
        self.findings.iter().filter(|f| f.is_mismatch()).count()
    }
}

fn same_transition(x: &Expect, o: &Observed) -> bool {
    o.event.device.as_str() == x.device
        && o.event.rule.as_str() == x.rule
        && o.event.state == x.state
}

fn inside(x: &Expect, t: f64) -> bool {
    t >= x.window_s[0] && t <= x.window_s[1]
}

/// Compares `arrived` with `expected`.
pub fn compare(expected: &[Expect], arrived: &[Observed]) -> Verdict {
    let mut taken = vec![false; arrived.len()];
    let mut results: Vec<Option<Finding>> = vec![None; expected.len()];
    // Exact matches first, so a near miss of one expectation cannot take
    // the alarm another one needs.
    for (i, x) in expected.iter().enumerate() {
        if let Some(j) = arrived.iter().enumerate().position(|(j, o)| {
            !taken[j] && same_transition(x, o) && o.event.level == x.level && inside(x, o.t_s)
        }) {
            taken[j] = true;
            results[i] = Some(Finding::Ok {
                expect: x.clone(),
                at_s: arrived[j].t_s,
            });
        }
    }
    for (i, x) in expected.iter().enumerate() {
        if results[i].is_some() {
            continue;
        }
        if x.optional {
            results[i] = Some(Finding::Absent { expect: x.clone() });
            continue;
        }
        let free = |j: usize, o: &Observed| !taken[j] && same_transition(x, o);
        let found = if let Some(j) = arrived
            .iter()
            .enumerate()
            .position(|(j, o)| free(j, o) && inside(x, o.t_s))
        {
            taken[j] = true;
            Finding::WrongLevel {
                expect: x.clone(),
                got: arrived[j].clone(),
            }
        } else if let Some(j) = arrived
            .iter()
            .enumerate()
            .position(|(j, o)| free(j, o) && o.event.level == x.level)
        {
            taken[j] = true;
            let at_s = arrived[j].t_s;
            if at_s > x.window_s[1] {
                Finding::TooLate {
                    expect: x.clone(),
                    at_s,
                }
            } else {
                Finding::TooEarly {
                    expect: x.clone(),
                    at_s,
                }
            }
        } else {
            Finding::Missing { expect: x.clone() }
        };
        results[i] = Some(found);
    }
    let mut findings: Vec<Finding> = results.into_iter().flatten().collect();
    for (j, o) in arrived.iter().enumerate() {
        if !taken[j] {
            findings.push(Finding::Unexpected { got: o.clone() });
        }
    }
    Verdict { findings }
}

fn describe(x: &Expect) -> String {
    format!(
        "{} {} {} {} in [{}, {}] s",
        x.device,
        x.rule,
        x.state.as_str(),
        x.level.as_str(),
        x.window_s[0],
        x.window_s[1]
    )
}

/// The readable diff.
pub fn render(name: &str, v: &Verdict) -> String {
    let mut s = String::new();
    for f in &v.findings {
        let _ = match f {
            Finding::Ok { expect, at_s } => {
                writeln!(
                    s,
                    "  ok           {} — arrived at {at_s:.0} s",
                    describe(expect)
                )
            }
            Finding::WrongLevel { expect, got } => writeln!(
                s,
                "  WRONG LEVEL  {} — arrived at {:.0} s as {}",
                describe(expect),
                got.t_s,
                got.event.level.as_str()
            ),
            Finding::TooLate { expect, at_s } => writeln!(
                s,
                "  TOO LATE     {} — arrived at {at_s:.0} s, {:.0} s late",
                describe(expect),
                at_s - expect.window_s[1]
            ),
            Finding::TooEarly { expect, at_s } => writeln!(
                s,
                "  TOO EARLY    {} — arrived at {at_s:.0} s, {:.0} s early",
                describe(expect),
                expect.window_s[0] - at_s
            ),
            Finding::Absent { expect } => {
                writeln!(s, "  (optional)   {} — did not arrive", describe(expect))
            }
            Finding::Missing { expect } => {
                writeln!(
                    s,
                    "  MISSING      {} — nothing like it arrived",
                    describe(expect)
                )
            }
            Finding::Unexpected { got } => writeln!(
                s,
                "  UNEXPECTED   {} {} {} {} at {:.0} s (value {:.3}, threshold {:.3})",
                got.event.device.as_str(),
                got.event.rule.as_str(),
                got.event.state.as_str(),
                got.event.level.as_str(),
                got.t_s,
                got.event.value,
                got.event.threshold
            ),
        };
    }
    let expected = v
        .findings
        .iter()
        .filter(|f| !matches!(f, Finding::Unexpected { .. }))
        .count();
    if v.passed() {
        let _ = writeln!(
            s,
            "{name}: PASSED ({expected} expected alarms, all on time, nothing else)"
        );
    } else {
        let _ = writeln!(
            s,
            "{name}: FAILED ({} mismatches, {expected} expected alarms)",
            v.mismatches()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use anquan_protocol::{AlarmEvent, AlarmState, DeviceKind, EventId, Id, Level, RuleId};

    use super::*;

    fn obs(t: f64, rule: &str, level: Level, state: AlarmState) -> Observed {
        let id = |s: &str| Id::new(s).unwrap_or_default();
        Observed {
            t_s: t,
            event: AlarmEvent {
                event_id: EventId::new("e").unwrap_or_default(),
                site: id("s"),
                device: id("d1"),
                kind: DeviceKind::Gas,
                rule: RuleId::new(rule).unwrap_or_default(),
                level,
                state,
                value: 1.0,
                threshold: 1.0,
                ts_ms: 0,
                gateway: id("g"),
            },
        }
    }

    fn exp(rule: &str, level: Level, state: AlarmState, w: [f64; 2]) -> Expect {
        Expect {
            device: "d1".into(),
            rule: rule.into(),
            level,
            state,
            window_s: w,
            optional: false,
        }
    }

    #[test]
    fn classifies_every_kind_of_mismatch() {
        use AlarmState::*;
        use Level::*;
        let arrived = [
            obs(10.0, "gas.lel", Yellow, Raised),
            obs(20.0, "gas.lel", Orange, Escalated),
            obs(90.0, "gas.lel", Orange, Cleared),
            obs(5.0, "gas.co", Blue, Raised),
            obs(50.0, "gas.fault", Yellow, Raised),
        ];
        let expected = [
            exp("gas.lel", Yellow, Raised, [0.0, 15.0]),
            exp("gas.lel", Red, Escalated, [15.0, 30.0]),
            exp("gas.lel", Orange, Cleared, [40.0, 60.0]),
            exp("gas.co", Blue, Raised, [10.0, 20.0]),
            exp("gas.button", Red, Raised, [0.0, 100.0]),
        ];
        let v = compare(&expected, &arrived);
        let kinds: Vec<&str> = v
            .findings
            .iter()
            .map(|f| match f {
                Finding::Ok { .. } => "ok",
                Finding::WrongLevel { .. } => "wrong",
                Finding::TooLate { .. } => "late",
                Finding::TooEarly { .. } => "early",
                Finding::Missing { .. } => "missing",
                Finding::Absent { .. } => "absent",
                Finding::Unexpected { .. } => "unexpected",
            })
            .collect();
        assert_eq!(
            kinds,
            ["ok", "wrong", "late", "early", "missing", "unexpected"]
        );
        assert!(!v.passed());
        let text = render("t", &v);
        assert!(
            text.contains("TOO LATE") && text.contains("FAILED (5 mismatches"),
            "{text}"
        );
    }

    #[test]
    fn an_optional_expectation_may_arrive_or_not() {
        let mut x = exp(
            "gas.lel",
            Level::Yellow,
            AlarmState::Escalated,
            [10.0, 20.0],
        );
        x.optional = true;
        let a = [obs(12.0, "gas.lel", Level::Yellow, AlarmState::Escalated)];
        assert!(compare(std::slice::from_ref(&x), &a).passed());
        assert!(compare(std::slice::from_ref(&x), &[]).passed());
        // Outside its window it is unexpected like any other alarm.
        let late = [obs(30.0, "gas.lel", Level::Yellow, AlarmState::Escalated)];
        assert!(!compare(&[x], &late).passed());
    }

    #[test]
    fn quiet_and_exact_runs_pass() {
        assert!(compare(&[], &[]).passed());
        let a = [obs(12.0, "gas.lel", Level::Red, AlarmState::Raised)];
        let x = [exp("gas.lel", Level::Red, AlarmState::Raised, [10.0, 12.0])];
        assert!(compare(&x, &a).passed());
    }
}
