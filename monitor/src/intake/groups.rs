//! The intake side of [`crate::correlation`]: an alarm transition joins,
//! leaves, forms or breaks out of a group warning before (instead of) its
//! own warning is looked at.

use anquan_protocol::{AlarmState, Level};
use sqlx::AnyConnection;

use super::Signal;
use super::memo::{Member, Memo, Open};
use crate::correlation::{GROUP_DEVICE, GROUP_KIND, GroupRule, GroupScope};
use crate::deferred::Deferred;
use crate::error::{Error, Result};
use crate::warnings::ladder::Ladder;
use crate::warnings::machine::{self, Input, Phase};
use crate::{App, db, warnings};

/// What grouping made of a transition.
pub(super) enum Grouped {
    /// Taken by the group warning (joined, moved, left it, or formed it).
    Into(String),
    /// Its own warning handles it (no rule, red, broke out, or too few
    /// alarms yet: then its first call may wait, see [`settle_of`]).
    Alone,
}

/// Decides whether `ev` (alarm `key`) belongs to a group warning, and
/// applies it there if so.
pub(super) async fn correlate(
    app: &App,
    c: &mut AnyConnection,
    d: &mut Deferred,
    m: &mut Memo,
    ev: &Signal,
    key: &str,
    now: i64,
) -> Result<Grouped> {
    let actor = format!("gateway:{}", ev.gateway);
    if let Some(mut mem) = m.member(c, key).await? {
        let Some(mut g) = m.by_id(c, &mem.group_id).await? else {
            return Ok(Grouped::Alone);
        };
        let ceiling = app
            .cfg
            .correlation
            .rules
            .iter()
            .find(|r| r.group_rule() == g.rule)
            .map_or(Level::Orange, GroupRule::ceiling);
        let leaving = match ev.state {
            AlarmState::Cleared => Some("recovered"),
            _ if ev.level > ceiling || ev.level == Level::Red => Some("broke out"),
            _ => None,
        };
        // A member that kept its own warning (called before the group
        // formed) is moved there too.
        let own = m.open(c, key).await?.is_some();
        if let Some(why) = leaving {
            mem.left = Some((now, why));
            m.set_member(key, mem);
            g.value = (g.value - 1.0).max(0.0);
            d.audit(
                now,
                &actor,
                "warning_member",
                &g.id,
                None,
                if why == "recovered" {
                    "LEFT"
                } else {
                    "BROKE_OUT"
                },
                &format!(
                    "{} {}: {why} (event {}); {} left in the group",
                    ev.device, ev.rule, ev.event_id, g.value
                ),
            );
            let gid = g.id.clone();
            if g.value < 1.0 {
                // The last member recovered or broke out: the cause is over.
                let level = g.w.level;
                step(app, c, d, m, g, AlarmState::Cleared, level, &actor, now).await?;
            } else {
                m.save(g);
            }
            return Ok(if why == "recovered" && !own {
                Grouped::Into(gid)
            } else {
                Grouped::Alone
            });
        }
        mem.level = ev.level;
        m.set_member(key, mem);
        let gid = g.id.clone();
        if ev.level > g.w.level {
            step(
                app,
                c,
                d,
                m,
                g,
                AlarmState::Escalated,
                ev.level,
                &actor,
                now,
            )
            .await?;
        }
        return Ok(Grouped::Into(gid));
    }
    if ev.state != AlarmState::Raised {
        return Ok(Grouped::Alone);
    }
    let Some(rule) = app.cfg.correlation.rule_for(&ev.rule, ev.level).cloned() else {
        return Ok(Grouped::Alone);
    };
    if m.open(c, key).await?.is_some() {
        return Ok(Grouped::Alone);
    }
    let (venue, region) = m.place(c, &ev.site, &ev.device).await?;
    let scope = match rule.by {
        GroupScope::Site => ev.site.clone(),
        GroupScope::Venue => match &venue {
            Some(v) => v.clone(),
            None => return Ok(Grouped::Alone),
        },
    };
    let gkey = rule.key(&scope, &ev.rule);
    let member = Member {
        group_id: String::new(),
        device: ev.device.clone(),
        rule: ev.rule.clone(),
        level: ev.level,
        joined_ms: now,
        left: None,
    };
    if let Some(mut g) = m.open(c, &gkey).await? {
        m.set_member(
            key,
            Member {
                group_id: g.id.clone(),
                ..member
            },
        );
        g.value += 1.0;
        d.audit(
            now,
            &actor,
            "warning_member",
            &g.id,
            None,
            "JOINED",
            &format!(
                "{} {} at {} (event {}); {} in the group",
                ev.device, ev.rule, ev.level, ev.event_id, g.value
            ),
        );
        let gid = g.id.clone();
        if ev.level > g.w.level {
            step(
                app,
                c,
                d,
                m,
                g,
                AlarmState::Escalated,
                ev.level,
                &actor,
                now,
            )
            .await?;
        } else {
            m.save(g);
        }
        return Ok(Grouped::Into(gid));
    }
    let since = now - i64::try_from(rule.window_s).unwrap_or(3600) * 1000;
    let peers: Vec<Open> = m
        .open_in(c, rule.by == GroupScope::Site, &scope, since)
        .await?
        .into_iter()
        .filter(|w| {
            rule.matches(&w.rule)
                && (!rule.per_rule || w.rule == ev.rule)
                && w.w.max_level <= rule.ceiling()
                && w.alarm_key != key
        })
        .collect();
    if peers.len() + 1 < rule.min_members as usize {
        return Ok(Grouped::Alone);
    }
    // The cause is common: one group warning. Peers nobody was called
    // about yet (held while it might form) are folded into it; those
    // already called keep their own warning and only count.
    let id = db::new_id();
    let folded: Vec<Open> = peers
        .iter()
        .filter(|w| w.ladder.step < 0 && w.ladder.due_ms.is_none() && w.acked_ms.is_none())
        .cloned()
        .collect();
    let level = peers.iter().map(|w| w.w.level).fold(ev.level, Level::max);
    // Every peer is a member; those nobody was called about are folded in.
    for w in &peers {
        m.set_member(
            &w.alarm_key,
            Member {
                group_id: id.clone(),
                device: w.device.clone(),
                rule: w.rule.clone(),
                level: w.w.level,
                joined_ms: now,
                left: None,
            },
        );
    }
    for mut w in folded.iter().cloned() {
        w.w.phase = Phase::Resolved;
        w.resolved_ms = Some(now);
        w.ladder.due_ms = None;
        d.audit(
            now,
            "system:correlation",
            "warning",
            &w.id,
            Some("RAISED"),
            "RESOLVED",
            &format!(
                "grouped into warning {id} ({}): one warning for one cause",
                rule.group_rule()
            ),
        );
        m.save(w);
    }
    m.set_member(
        key,
        Member {
            group_id: id.clone(),
            ..member
        },
    );
    let n = peers.len() + 1;
    let (state, fx) = machine::open(level);
    let mut g = Open {
        id: id.clone(),
        alarm_key: gkey,
        venue_id: venue.clone(),
        region_id: region,
        site: ev.site.clone(),
        device: GROUP_DEVICE.into(),
        kind: GROUP_KIND.into(),
        rule: rule.group_rule(),
        w: state,
        ladder: Ladder::NEW,
        value: n as f64,
        threshold: f64::from(rule.min_members),
        raised_ms: now,
        acked_ms: None,
        acked_by: None,
        acked_via: None,
        false_alarm: None,
        resolved_ms: None,
        new: true,
    };
    d.audit(
        now,
        "system:correlation",
        "warning",
        &id,
        None,
        "RAISED",
        &format!(
            "{} alarms of one cause ({}) at {} {scope} within {} s: one {} warning; {} folded in, {} already called keep their own warning too (event {})",
            peers.len() + 1,
            rule.name,
            if rule.by == GroupScope::Site { "site" } else { "venue" },
            rule.window_s,
            level,
            folded.len(),
            peers.len() - folded.len(),
            ev.event_id
        ),
    );
    app.metrics.groups_formed.inc();
    m.ensure_ctx(app, c, &g, now).await?;
    warnings::apply(
        app,
        &mut m.ctx,
        d,
        &mut g,
        Phase::Raised,
        fx,
        "system:correlation",
        now,
    );
    m.save(g);
    Ok(Grouped::Into(id))
}

/// How long the first call of a new warning for `ev` waits while a group
/// may form (none: called at once).
pub(super) fn settle_of(app: &App, ev: &Signal) -> Option<i64> {
    if ev.kind == crate::liveness::KIND {
        return None;
    }
    app.cfg
        .correlation
        .rule_for(&ev.rule, ev.level)
        .filter(|r| r.settle_s > 0)
        .map(|r| i64::try_from(r.settle_s).unwrap_or(300) * 1000)
}

/// Moves the group warning `g` by an alarm transition of its own.
#[allow(clippy::too_many_arguments)]
async fn step(
    app: &App,
    c: &mut AnyConnection,
    d: &mut Deferred,
    m: &mut Memo,
    mut g: Open,
    state: AlarmState,
    level: Level,
    actor: &str,
    now: i64,
) -> Result<()> {
    let from = g.w.phase;
    let (next, fx) = machine::step(&g.w, &Input::Alarm { state, level }, g.rules(app))
        .map_err(|e| Error::Conflict(format!("warning {}: {e}", g.id)))?;
    g.w = next;
    if fx.iter().any(|e| matches!(e, machine::Effect::Ladder(_))) {
        m.ensure_ctx(app, c, &g, now).await?;
    }
    warnings::apply(app, &mut m.ctx, d, &mut g, from, fx, actor, now);
    m.save(g);
    Ok(())
}
