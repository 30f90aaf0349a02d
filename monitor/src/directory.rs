//! The people a policy names, found for a venue at a moment: the venue's
//! principal and safety officers, its grid's officers, the rota of its
//! town, county and city, and how to reach each of them.
//!
//! [`Directory::load`] reads what the venues at hand need in a fixed
//! number of queries, whatever their number (an intake batch loads once
//! for all its venues); [`Directory::resolve`] is pure.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sqlx::{AnyConnection, Row};

use crate::db::opt_str;
use crate::error::Result;
use crate::messages::Lang;
use crate::policy::{ChannelKind, Selector, Tier};
use crate::rota;

/// How to reach a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Id.
    pub id: String,
    /// Name (messages say who acknowledged).
    pub name: String,
    /// Mobile number.
    pub phone: Option<String>,
    /// Language of their messages; none = the deployment's.
    pub lang: Option<Lang>,
    /// Their channels in their order of preference, with the address of
    /// each (a phone number, a robot's name, a URL, an e-mail address).
    pub channels: Vec<(ChannelKind, String)>,
}

/// A person's `channels` text (`sms,voice,wecom:duty-room,email`) into
/// kinds and robot names; the error names the bad entry.
pub fn parse_channels(s: &str) -> std::result::Result<Vec<(ChannelKind, Option<String>)>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, robot) = match part.split_once(':') {
            Some((k, r)) => (k, Some(r.to_string())),
            None => (part, None),
        };
        let k = ChannelKind::parse(kind).ok_or_else(|| {
            format!(
                "{part:?}: unknown channel; use {:?} (robots as wecom:<robot>)",
                ChannelKind::ALL.map(ChannelKind::as_str)
            )
        })?;
        if k.is_robot() != robot.is_some() {
            return Err(if k.is_robot() {
                format!("{part:?}: name the robot, e.g. {kind}:duty-room")
            } else {
                format!("{part:?}: only wecom, dingtalk and feishu name a robot")
            });
        }
        out.push((k, robot));
    }
    Ok(out)
}

impl Contact {
    /// From a `people` row's columns. Without `channels`, the person is
    /// reached on what they have: SMS and voice to the phone, the webhook,
    /// e-mail.
    pub fn from_parts(
        id: String,
        name: String,
        phone: Option<String>,
        email: Option<String>,
        webhook: Option<String>,
        lang: Option<String>,
        channels: Option<String>,
    ) -> Self {
        let listed = channels
            .as_deref()
            .and_then(|c| parse_channels(c).ok())
            .filter(|c| !c.is_empty());
        let wanted: Vec<(ChannelKind, Option<String>)> = listed.unwrap_or_else(|| {
            let mut v = Vec::new();
            if phone.is_some() {
                v.push((ChannelKind::Sms, None));
                v.push((ChannelKind::Voice, None));
            }
            if webhook.is_some() {
                v.push((ChannelKind::Webhook, None));
            }
            if email.is_some() {
                v.push((ChannelKind::Email, None));
            }
            v
        });
        let channels = wanted
            .into_iter()
            .filter_map(|(k, robot)| {
                let addr = match k {
                    ChannelKind::Sms | ChannelKind::Voice => phone.clone(),
                    ChannelKind::Email => email.clone(),
                    ChannelKind::Webhook => webhook.clone(),
                    _ => robot,
                };
                addr.map(|a| (k, a))
            })
            .collect();
        Self {
            id,
            name,
            phone,
            lang: lang.as_deref().and_then(Lang::parse),
            channels,
        }
    }

    /// The channels to use for a notice that may go by `via`: the person's
    /// own channels of those kinds, in the person's order; when none fits,
    /// all the person's channels (flagged `true`: the caller audits it).
    pub fn channels_for(&self, via: &[ChannelKind]) -> (Vec<(ChannelKind, String)>, bool) {
        let fit: Vec<(ChannelKind, String)> = self
            .channels
            .iter()
            .filter(|(k, _)| via.contains(k))
            .cloned()
            .collect();
        if fit.is_empty() {
            (self.channels.clone(), !self.channels.is_empty())
        } else {
            (fit, false)
        }
    }
}

/// A venue as notices need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueInfo {
    /// Name.
    pub name: String,
    /// Region.
    pub region: String,
    /// Grid (网格).
    pub grid: Option<String>,
}

/// A device as notices need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its name (none: the id is used).
    pub name: Option<String>,
    /// Where it is.
    pub location: Option<String>,
    /// Its registration (a crane's 使用登记编号).
    pub registration: Option<String>,
}

/// What [`Directory::resolve`] reads; see the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    venues: HashMap<String, VenueInfo>,
    devices: HashMap<String, DeviceInfo>,
    venue_people: HashMap<String, Vec<(String, i64, String)>>,
    grid_people: HashMap<String, Vec<(i64, String)>>,
    /// Every region: (tier, parent).
    regions: HashMap<String, (Option<Tier>, Option<String>)>,
    duty: HashMap<(String, String), Vec<rota::Entry>>,
    overrides: HashMap<(String, String), Vec<rota::Override>>,
    holidays: HashSet<NaiveDate>,
    people: HashMap<String, Contact>,
    /// Regions whose rota was read.
    duty_regions: HashSet<String>,
    /// The day (CST) the regions, holidays and overrides were read for.
    day: Option<NaiveDate>,
    /// That day and the day before, `YYYY-MM-DD`.
    days: [String; 2],
}

/// `$1, $2, …` (or `?` on SQLite) for `n` values from `from`.
fn marks(c: &AnyConnection, from: usize, n: usize) -> String {
    crate::intake::memo::marks(c, from, n)
}

/// The distinct non-empty values, padded to a power of two (few statement
/// shapes stay prepared).
fn padded(values: &[String]) -> Vec<String> {
    let mut v: Vec<String> = values.to_vec();
    v.sort();
    v.dedup();
    if v.is_empty() {
        v.push(String::new());
    }
    let n = v.len().next_power_of_two();
    let last = v[v.len() - 1].clone();
    v.resize(n, last);
    v
}

async fn rows(
    c: &mut AnyConnection,
    sql_before: &str,
    values: &[String],
    sql_after: &str,
) -> Result<Vec<sqlx::any::AnyRow>> {
    let vp = padded(values);
    let sql = format!("{sql_before}({}){sql_after}", marks(c, 1, vp.len()));
    let mut q = sqlx::query(&sql);
    for v in &vp {
        q = q.bind(v.as_str());
    }
    Ok(q.fetch_all(&mut *c).await?)
}

impl Directory {
    /// An empty directory (every lookup then loads what it needs).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `venue` was loaded.
    pub fn has_venue(&self, venue: &str) -> bool {
        self.venues.contains_key(venue)
    }

    /// Whether `device` was loaded.
    pub fn has_device(&self, device: &str) -> bool {
        self.devices.contains_key(device)
    }

    /// A venue.
    pub fn venue(&self, id: &str) -> Option<&VenueInfo> {
        self.venues.get(id)
    }

    /// A device.
    pub fn device(&self, id: &str) -> Option<&DeviceInfo> {
        self.devices.get(id)
    }

    /// A person's contact (none: not in the registry).
    pub fn contact(&self, person: &str) -> Option<&Contact> {
        self.people.get(person)
    }

    /// Loads what resolving for `venues` and writing about `devices`
    /// needs at `now_ms`, plus the contacts of `people` (the people a
    /// policy names), into this directory. Regions, their rota and the
    /// day's overrides and holidays are read once.
    pub async fn load(
        &mut self,
        c: &mut AnyConnection,
        venues: &[String],
        devices: &[String],
        people: &[String],
        extra_regions: &[String],
        now_ms: i64,
    ) -> Result<()> {
        let venues: Vec<String> = venues
            .iter()
            .filter(|v| !self.venues.contains_key(*v))
            .cloned()
            .collect();
        let devices: Vec<String> = devices
            .iter()
            .filter(|d| !self.devices.contains_key(*d))
            .cloned()
            .collect();
        let mut wanted: Vec<String> = people
            .iter()
            .filter(|p| !self.people.contains_key(*p))
            .cloned()
            .collect();
        if !venues.is_empty() {
            for r in rows(
                c,
                "SELECT id, name, region_id, grid_id FROM venues WHERE id IN ",
                &venues,
                "",
            )
            .await?
            {
                self.venues.insert(
                    r.try_get("id")?,
                    VenueInfo {
                        name: r.try_get("name")?,
                        region: r.try_get("region_id")?,
                        grid: opt_str(&r, "grid_id")?,
                    },
                );
            }
            for r in rows(
                c,
                "SELECT venue_id, role, rank, person_id FROM venue_people WHERE venue_id IN ",
                &venues,
                " ORDER BY rank, person_id",
            )
            .await?
            {
                let p: String = r.try_get("person_id")?;
                wanted.push(p.clone());
                self.venue_people
                    .entry(r.try_get("venue_id")?)
                    .or_default()
                    .push((r.try_get("role")?, r.try_get("rank")?, p));
            }
            let grids: Vec<String> = venues
                .iter()
                .filter_map(|v| self.venues.get(v).and_then(|i| i.grid.clone()))
                .filter(|g| !self.grid_people.contains_key(g))
                .collect();
            if !grids.is_empty() {
                for g in &grids {
                    self.grid_people.entry(g.clone()).or_default();
                }
                for r in rows(
                    c,
                    "SELECT grid_id, rank, person_id FROM grid_people WHERE grid_id IN ",
                    &grids,
                    " ORDER BY rank, person_id",
                )
                .await?
                {
                    let p: String = r.try_get("person_id")?;
                    wanted.push(p.clone());
                    self.grid_people
                        .entry(r.try_get("grid_id")?)
                        .or_default()
                        .push((r.try_get("rank")?, p));
                }
            }
            for v in &venues {
                // A venue id that is not in the table stays unknown, but is
                // not looked up again.
                self.venue_people.entry(v.clone()).or_default();
            }
        }
        if !devices.is_empty() {
            for d in &devices {
                self.devices.insert(d.clone(), DeviceInfo::default());
            }
            for r in rows(
                c,
                "SELECT id, name, location, registration FROM devices WHERE id IN ",
                &devices,
                "",
            )
            .await?
            {
                self.devices.insert(
                    r.try_get("id")?,
                    DeviceInfo {
                        name: opt_str(&r, "name")?,
                        location: opt_str(&r, "location")?,
                        registration: opt_str(&r, "registration")?,
                    },
                );
            }
        }
        self.ensure_regions(c, now_ms).await?;
        let mut regions: Vec<String> = Vec::new();
        for v in &venues {
            regions.extend(self.chain(Some(v)));
        }
        if venues.is_empty() || venues.iter().any(|v| !self.venues.contains_key(v)) {
            regions.extend(self.chain(None));
        }
        regions.extend(extra_regions.iter().flat_map(|r| self.chain_of(r)));
        wanted.extend(self.ensure_duty(c, &regions).await?);
        wanted.retain(|p| !self.people.contains_key(p));
        wanted.sort();
        wanted.dedup();
        if !wanted.is_empty() {
            for p in &wanted {
                // Absent from the registry: remembered as absent.
                self.people.insert(
                    p.clone(),
                    Contact {
                        id: String::new(),
                        name: String::new(),
                        phone: None,
                        lang: None,
                        channels: Vec::new(),
                    },
                );
            }
            for r in rows(
                c,
                "SELECT id, name, phone, email, webhook, lang, channels FROM people WHERE id IN ",
                &wanted,
                "",
            )
            .await?
            {
                let id: String = r.try_get("id")?;
                self.people.insert(
                    id.clone(),
                    Contact::from_parts(
                        id,
                        r.try_get("name")?,
                        opt_str(&r, "phone")?,
                        opt_str(&r, "email")?,
                        opt_str(&r, "webhook")?,
                        opt_str(&r, "lang")?,
                        opt_str(&r, "channels")?,
                    ),
                );
            }
            self.people.retain(|_, c| !c.id.is_empty());
        }
        Ok(())
    }

    /// Every region (a city's tree is small) and the holidays of today
    /// and yesterday, once per day of `now_ms`.
    async fn ensure_regions(&mut self, c: &mut AnyConnection, now_ms: i64) -> Result<()> {
        let (today, _) = rota::local(now_ms);
        if self.day == Some(today) {
            return Ok(());
        }
        self.regions.clear();
        self.holidays.clear();
        self.duty.clear();
        self.overrides.clear();
        self.duty_regions.clear();
        for r in sqlx::query("SELECT id, tier, parent_id FROM regions")
            .fetch_all(&mut *c)
            .await?
        {
            self.regions.insert(
                r.try_get("id")?,
                (
                    Tier::parse(&r.try_get::<String, _>("tier")?),
                    opt_str(&r, "parent_id")?,
                ),
            );
        }
        let yesterday = today.pred_opt().unwrap_or(today);
        self.days = [
            today.format("%Y-%m-%d").to_string(),
            yesterday.format("%Y-%m-%d").to_string(),
        ];
        let sql = format!("SELECT day FROM holidays WHERE day IN ({})", marks(c, 1, 2));
        for r in sqlx::query(&sql)
            .bind(&self.days[0])
            .bind(&self.days[1])
            .fetch_all(&mut *c)
            .await?
        {
            if let Ok(d) = NaiveDate::parse_from_str(&r.try_get::<String, _>("day")?, "%Y-%m-%d") {
                self.holidays.insert(d);
            }
        }
        self.day = Some(today);
        Ok(())
    }

    /// The rota of `regions` not read yet, with the overrides of today and
    /// yesterday (an overnight shift or override reaches into today).
    /// Returns the people named.
    async fn ensure_duty(
        &mut self,
        c: &mut AnyConnection,
        regions: &[String],
    ) -> Result<Vec<String>> {
        let mut missing: Vec<String> = regions
            .iter()
            .filter(|r| !self.duty_regions.contains(*r))
            .cloned()
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let mut people = Vec::new();
        for r in rows(
            c,
            "SELECT person_id, role, region_id, rank, from_ms, until_ms, days, start_min, end_min, holidays \
             FROM duty WHERE region_id IN ",
            &missing,
            "",
        )
        .await?
        {
            let window = match (
                r.try_get::<Option<i64>, _>("start_min")?,
                r.try_get::<Option<i64>, _>("end_min")?,
            ) {
                (Some(s), Some(e)) => Some((s, e)),
                _ => None,
            };
            let person: String = r.try_get("person_id")?;
            people.push(person.clone());
            self.duty
                .entry((r.try_get("region_id")?, r.try_get("role")?))
                .or_default()
                .push(rota::Entry {
                    person,
                    rank: r.try_get("rank")?,
                    from_ms: r.try_get("from_ms")?,
                    until_ms: r.try_get("until_ms")?,
                    days: opt_str(&r, "days")?
                        .as_deref()
                        .and_then(rota::parse_days)
                        .unwrap_or(0),
                    window,
                    holidays: opt_str(&r, "holidays")?
                        .as_deref()
                        .and_then(rota::Holidays::parse)
                        .unwrap_or_default(),
                });
        }
        let vp = padded(&missing);
        let sql = format!(
            "SELECT day, region_id, role, person_id, rank, start_min, end_min FROM duty_overrides \
             WHERE day IN ({}) AND region_id IN ({})",
            marks(c, 1, 2),
            marks(c, 3, vp.len())
        );
        let mut q = sqlx::query(&sql).bind(&self.days[0]).bind(&self.days[1]);
        for v in &vp {
            q = q.bind(v.as_str());
        }
        for r in q.fetch_all(&mut *c).await? {
            let Ok(day) = NaiveDate::parse_from_str(&r.try_get::<String, _>("day")?, "%Y-%m-%d")
            else {
                continue;
            };
            let window = match (
                r.try_get::<Option<i64>, _>("start_min")?,
                r.try_get::<Option<i64>, _>("end_min")?,
            ) {
                (Some(s), Some(e)) => Some((s, e)),
                _ => None,
            };
            let person: String = r.try_get("person_id")?;
            people.push(person.clone());
            self.overrides
                .entry((r.try_get("region_id")?, r.try_get("role")?))
                .or_default()
                .push(rota::Override {
                    person,
                    rank: r.try_get("rank")?,
                    day,
                    window,
                });
        }
        self.duty_regions.extend(missing);
        Ok(people)
    }

    /// `region` and its ancestors, nearest first.
    fn chain_of(&self, region: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(region.to_string());
        while let Some(id) = cur {
            if out.contains(&id) || out.len() > 8 {
                break;
            }
            cur = self.regions.get(&id).and_then(|(_, p)| p.clone());
            out.push(id);
        }
        out
    }

    /// The region chain of a venue, nearest first (none for an
    /// unregistered site: then the top-level regions stand for it, as the
    /// cities' rosters did).
    fn chain(&self, venue: Option<&str>) -> Vec<String> {
        let Some(start) = venue
            .and_then(|v| self.venues.get(v))
            .map(|v| v.region.as_str())
        else {
            let mut roots: Vec<String> = self
                .regions
                .iter()
                .filter(|(_, (_, parent))| parent.is_none())
                .map(|(id, _)| id.clone())
                .collect();
            roots.sort();
            return roots;
        };
        self.chain_of(start)
    }

    fn on_duty(&self, region: &str, role: &str, now_ms: i64) -> Vec<String> {
        let key = (region.to_string(), role.to_string());
        rota::on_duty(
            self.duty.get(&key).map_or(&[], Vec::as_slice),
            self.overrides.get(&key).map_or(&[], Vec::as_slice),
            &self.holidays,
            now_ms,
        )
    }

    /// The people `sel` names for a warning at `venue` at `now_ms`.
    /// `called` and `informed` name nobody here (the ladder knows them).
    pub fn resolve(&self, sel: &Selector, venue: Option<&str>, now_ms: i64) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |people: Vec<String>| {
            for p in people {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        };
        match sel {
            Selector::Venue(role) => {
                if let Some(list) = venue.and_then(|v| self.venue_people.get(v)) {
                    add(list
                        .iter()
                        .filter(|(r, _, _)| r == role)
                        .map(|(_, _, p)| p.clone())
                        .collect());
                }
            }
            Selector::Grid => {
                if let Some(list) = venue
                    .and_then(|v| self.venues.get(v))
                    .and_then(|v| v.grid.as_ref())
                    .and_then(|g| self.grid_people.get(g))
                {
                    add(list.iter().map(|(_, p)| p.clone()).collect());
                }
            }
            Selector::Tier(tier, role) => {
                for r in self.chain(venue) {
                    if self.regions.get(&r).and_then(|(t, _)| *t) == Some(*tier) {
                        add(self.on_duty(&r, role, now_ms));
                    }
                }
            }
            Selector::Nearest(role) => {
                let chain = self.chain(venue);
                if venue.is_some_and(|v| self.venues.contains_key(v)) {
                    if let Some(found) = chain
                        .iter()
                        .map(|r| self.on_duty(r, role, now_ms))
                        .find(|p| !p.is_empty())
                    {
                        add(found);
                    }
                } else {
                    for r in chain {
                        add(self.on_duty(&r, role, now_ms));
                    }
                }
            }
            Selector::Person(id) => add(vec![id.clone()]),
            Selector::Called | Selector::Informed => {}
        }
        out
    }

    /// Every person `sels` name, in order, each once.
    pub fn resolve_all(&self, sels: &[Selector], venue: Option<&str>, now_ms: i64) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in sels {
            for p in self.resolve(s, venue, now_ms) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// The people on duty in `role` for `region` (nearest region up from
    /// it that has someone): for tasks and reminders.
    pub fn nearest_on_duty(&self, region: Option<&str>, role: &str, now_ms: i64) -> Vec<String> {
        let chain = match region {
            Some(r) => self.chain_of(r),
            None => self.chain(None),
        };
        chain
            .iter()
            .map(|r| self.on_duty(r, role, now_ms))
            .find(|p| !p.is_empty())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_parse_and_default() {
        assert_eq!(
            parse_channels("sms, wecom:duty-room,email"),
            Ok(vec![
                (ChannelKind::Sms, None),
                (ChannelKind::Wecom, Some("duty-room".into())),
                (ChannelKind::Email, None)
            ])
        );
        assert!(parse_channels("pager").is_err());
        assert!(parse_channels("wecom").is_err());
        assert!(parse_channels("sms:x").is_err());
        let c = Contact::from_parts(
            "p".into(),
            "P".into(),
            Some("+8613800000001".into()),
            Some("p@example.invalid".into()),
            None,
            Some("en".into()),
            None,
        );
        assert_eq!(c.lang, Some(Lang::En));
        assert_eq!(
            c.channels.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            [ChannelKind::Sms, ChannelKind::Voice, ChannelKind::Email]
        );
        let (quiet, fell_back) = c.channels_for(&[ChannelKind::Email, ChannelKind::Wecom]);
        assert_eq!(
            quiet,
            [(ChannelKind::Email, "p@example.invalid".to_string())]
        );
        assert!(!fell_back);
        let (all, fell_back) = c.channels_for(&[ChannelKind::Feishu]);
        assert_eq!(all.len(), 3);
        assert!(fell_back, "no feishu: every channel, flagged for the audit");
        // A listed channel without an address is dropped.
        let c = Contact::from_parts(
            "p".into(),
            "P".into(),
            None,
            None,
            None,
            None,
            Some("sms,dingtalk:town".into()),
        );
        assert_eq!(c.channels, [(ChannelKind::Dingtalk, "town".to_string())]);
    }
}
