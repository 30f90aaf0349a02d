//! The registry: regions (city → county → town), grid cells (网格) with
//! their officers, venues (each in a region and a grid), devices bound to
//! venues, people (with their phone, channels and language), who is the
//! principal and the safety officer of each venue, the duty rota (always
//! on, absolute windows or recurring shifts, with a 带班领导 role), dated
//! overrides of the rota and public holidays. Who is called for a warning
//! is the notification policy's business ([`crate::policy`],
//! [`crate::directory`]); this module stores and checks the rows.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::config::{ConfigError, check_role};
use crate::db::{Columns, row};
use crate::error::{Error, Result};
use crate::rows::RegistryListRow;

row! {
    /// A region.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Region {
        /// Id.
        pub id: String,
        /// Name.
        pub name: String,
        /// `city`, `county` or `town`.
        pub tier: String,
        /// The enclosing region (none for a city).
        #[serde(default)]
        pub parent_id: Option<String>,
    }
}

impl Region {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_id(&format!("{key}.id"), &self.id)?;
        if !["city", "county", "town"].contains(&self.tier.as_str()) {
            return Err(ConfigError::new(
                format!("{key}.tier"),
                "must be city, county or town",
            ));
        }
        if self.tier == "city" && self.parent_id.is_some() {
            return Err(ConfigError::new(
                format!("{key}.parent_id"),
                "a city has no parent",
            ));
        }
        if self.tier != "city" && self.parent_id.is_none() {
            return Err(ConfigError::new(
                format!("{key}.parent_id"),
                "a county or town needs its parent region",
            ));
        }
        Ok(())
    }
}

/// A venue (site).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Venue {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Sector (`scenic_area`, `hotel`, `entertainment`, `construction`, …).
    pub sector: String,
    /// Address.
    pub address: String,
    /// Latitude (WGS-84, or in `datum`).
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude.
    #[serde(default)]
    pub lon: Option<f64>,
    /// The datum `lat`/`lon` are written in: `wgs84` (default), or `gcj02`
    /// / `bd09` when copied from AMap, Tencent or Baidu maps; stored
    /// converted to WGS-84.
    #[serde(default, skip_serializing_if = "is_wgs84")]
    pub datum: crate::geo::Datum,
    /// Region (usually a town).
    pub region_id: String,
    /// The gateway's site id, when it differs from `id`.
    #[serde(default)]
    pub site: Option<String>,
    /// The grid cell (网格) it is in.
    #[serde(default)]
    pub grid_id: Option<String>,
}

impl Venue {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_id(&format!("{key}.id"), &self.id)?;
        if self.name.trim().is_empty() {
            return Err(ConfigError::new(format!("{key}.name"), "must not be empty"));
        }
        if let Some(lat) = self.lat
            && !(-90.0..=90.0).contains(&lat)
        {
            return Err(ConfigError::new(
                format!("{key}.lat"),
                "must be within -90..90",
            ));
        }
        if let Some(lon) = self.lon
            && !(-180.0..=180.0).contains(&lon)
        {
            return Err(ConfigError::new(
                format!("{key}.lon"),
                "must be within -180..180",
            ));
        }
        Ok(())
    }

    /// `lat`/`lon` in WGS-84, as stored.
    pub fn wgs84(&self) -> (Option<f64>, Option<f64>) {
        match (self.lat, self.lon) {
            (Some(lat), Some(lon)) => {
                let (lat, lon) = crate::geo::to_wgs84(self.datum, lat, lon);
                (Some(lat), Some(lon))
            }
            other => other,
        }
    }

    /// The site id the gateway uses.
    pub fn site_id(&self) -> &str {
        self.site.as_deref().unwrap_or(&self.id)
    }
}

fn is_wgs84(d: &crate::geo::Datum) -> bool {
    *d == crate::geo::Datum::Wgs84
}

row! {
    /// A device bound to a venue.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Device {
        /// Device id (as in the wire contract).
        pub id: String,
        /// Venue.
        pub venue_id: String,
        /// `gas`, `electrical`, `water_pressure`, `crane`, `fire_panel`.
        pub kind: String,
        /// Its name in messages (e.g. `燃气探测器1`); the id when none.
        #[serde(default)]
        pub name: Option<String>,
        /// Where it is (e.g. `游客中心厨房`).
        #[serde(default)]
        pub location: Option<String>,
        /// Its registration with the authority, e.g. a tower crane's
        /// 使用登记编号 (`苏A-T00123`): up to 32 characters, no control
        /// characters; named in messages and the UI.
        #[serde(default)]
        pub registration: Option<String>,
    }
}

row! {
    /// A person.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Person {
        /// Id.
        pub id: String,
        /// Name.
        pub name: String,
        /// Main role (see `config::ROLES`).
        pub role: String,
        /// Home region.
        pub region_id: String,
        /// E-mail address for notices.
        #[serde(default)]
        pub email: Option<String>,
        /// Webhook URL (IM/SMS gateway profile) for notices.
        #[serde(default)]
        pub webhook: Option<String>,
        /// Mobile number (SMS, voice calls, the robots' mentions):
        /// `13800000001` or `+8613800000001`.
        #[serde(default)]
        pub phone: Option<String>,
        /// The language of their messages: `zh` or `en` (none: `notify.lang`).
        #[serde(default)]
        pub lang: Option<String>,
        /// Their channels in their order of preference, comma-separated:
        /// `sms`, `voice`, `wecom:<robot>`, `dingtalk:<robot>`,
        /// `feishu:<robot>`, `webhook`, `email`. None: SMS and voice if they
        /// have a phone, then the webhook, then e-mail.
        #[serde(default)]
        pub channels: Option<String>,
    }
}

/// A mainland mobile number (11 digits from 1) or an E.164 number.
pub fn valid_phone(p: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match p.strip_prefix('+') {
        Some(rest) => digits(rest) && (8..=15).contains(&rest.len()),
        None => digits(p) && p.len() == 11 && p.starts_with('1'),
    }
}

impl Person {
    /// The kinds and robot names of `channels`.
    pub fn channel_list(&self) -> Vec<(crate::policy::ChannelKind, Option<String>)> {
        self.channels
            .as_deref()
            .and_then(|c| crate::directory::parse_channels(c).ok())
            .unwrap_or_default()
    }

    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        use crate::policy::ChannelKind;
        check_id(&format!("{key}.id"), &self.id)?;
        check_role(&format!("{key}.role"), &self.role)?;
        if let Some(p) = &self.phone
            && !valid_phone(p)
        {
            return Err(ConfigError::new(
                format!("{key}.phone"),
                "a mobile number: 11 digits (13800000001) or +<country><number>",
            ));
        }
        if let Some(l) = &self.lang
            && crate::messages::Lang::parse(l).is_none()
        {
            return Err(ConfigError::new(format!("{key}.lang"), "zh or en"));
        }
        let listed = match &self.channels {
            Some(c) => crate::directory::parse_channels(c)
                .map_err(|e| ConfigError::new(format!("{key}.channels"), e))?,
            None => Vec::new(),
        };
        for (k, _) in &listed {
            let missing = match k {
                ChannelKind::Sms | ChannelKind::Voice if self.phone.is_none() => Some("phone"),
                ChannelKind::Email if self.email.is_none() => Some("email"),
                ChannelKind::Webhook if self.webhook.is_none() => Some("webhook"),
                _ => None,
            };
            if let Some(m) = missing {
                return Err(ConfigError::new(
                    format!("{key}.{m}"),
                    format!("channels names {} but the person has no {m}", k.as_str()),
                ));
            }
        }
        if let Some(e) = &self.email
            && e.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(ConfigError::new(
                format!("{key}.email"),
                "not an e-mail address",
            ));
        }
        if let Some(w) = &self.webhook
            && !(w.starts_with("http://") || w.starts_with("https://"))
        {
            return Err(ConfigError::new(
                format!("{key}.webhook"),
                "must be an http(s) URL",
            ));
        }
        if self.email.is_none()
            && self.webhook.is_none()
            && self.phone.is_none()
            && !listed.iter().any(|(k, _)| k.is_robot())
        {
            return Err(ConfigError::new(
                format!("{key}.phone"),
                "give a phone, a robot channel, an e-mail address or a webhook, or the person cannot be notified",
            ));
        }
        Ok(())
    }
}

/// A roster entry: `person_id` is on duty as `role` for `region_id`;
/// lower `rank` is called first; `from_ms`/`until_ms` bound the shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Duty {
    /// Person.
    pub person_id: String,
    /// Role on this shift.
    pub role: String,
    /// Region covered.
    pub region_id: String,
    /// Call order within the role and region.
    #[serde(default)]
    pub rank: i64,
    /// Shift start (Unix ms); none = always.
    #[serde(default)]
    pub from_ms: Option<i64>,
    /// Shift end (Unix ms); none = always.
    #[serde(default)]
    pub until_ms: Option<i64>,
    /// A recurring shift: the weekdays it starts on, `1`–`7` (Monday = 1),
    /// e.g. `"12345"`; none = every day.
    #[serde(default)]
    pub days: Option<String>,
    /// A recurring shift's start, `HH:MM` Beijing time (with `end`); none =
    /// the whole day.
    #[serde(default)]
    pub start: Option<String>,
    /// Its end, `HH:MM`; not after `start` = overnight (to the next day).
    #[serde(default)]
    pub end: Option<String>,
    /// On public holidays (`[[seed.holidays]]`): `work` (default), `skip`
    /// or `only` (holiday duty).
    #[serde(default)]
    pub holidays: Option<String>,
}

impl Duty {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_role(&format!("{key}.role"), &self.role)?;
        if let Some(d) = &self.days
            && crate::rota::parse_days(d).is_none_or(|m| m == 0)
        {
            return Err(ConfigError::new(
                format!("{key}.days"),
                "weekdays 1-7 (Monday = 1), e.g. \"12345\"",
            ));
        }
        window(key, self.start.as_deref(), self.end.as_deref())?;
        if let Some(h) = &self.holidays
            && crate::rota::Holidays::parse(h).is_none()
        {
            return Err(ConfigError::new(
                format!("{key}.holidays"),
                "work, skip or only",
            ));
        }
        if let (Some(f), Some(u)) = (self.from_ms, self.until_ms)
            && u <= f
        {
            return Err(ConfigError::new(
                format!("{key}.until_ms"),
                "must be after from_ms",
            ));
        }
        Ok(())
    }
}

/// A shift window: both `start` and `end` (`HH:MM`, different) or neither.
fn window(
    key: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<Option<(i64, i64)>, ConfigError> {
    match (start, end) {
        (None, None) => Ok(None),
        (Some(s), Some(e)) => {
            let s = crate::rota::parse_hhmm(s)
                .ok_or_else(|| ConfigError::new(format!("{key}.start"), "HH:MM, 00:00 to 24:00"))?;
            let e = crate::rota::parse_hhmm(e)
                .ok_or_else(|| ConfigError::new(format!("{key}.end"), "HH:MM, 00:00 to 24:00"))?;
            if s == e {
                return Err(ConfigError::new(
                    format!("{key}.end"),
                    "must differ from start",
                ));
            }
            Ok(Some((s, e)))
        }
        (Some(_), None) => Err(ConfigError::new(
            format!("{key}.end"),
            "give end with start",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            format!("{key}.start"),
            "give start with end",
        )),
    }
}

/// A grid cell (网格) and its officers (网格员), first called first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The region it lies in.
    pub region_id: String,
    /// Its officers (person ids), in order.
    #[serde(default)]
    pub officers: Vec<String>,
}

impl Grid {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_id(&format!("{key}.id"), &self.id)?;
        if self.name.trim().is_empty() {
            return Err(ConfigError::new(format!("{key}.name"), "must not be empty"));
        }
        Ok(())
    }
}

/// A person's role at a venue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VenuePerson {
    /// The venue.
    pub venue_id: String,
    /// The person.
    pub person_id: String,
    /// `principal` (主要负责人) or `safety_officer` (安全员).
    pub role: String,
    /// Order among the venue's people in that role (lower first).
    #[serde(default)]
    pub rank: i64,
}

impl VenuePerson {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !crate::policy::VENUE_ROLES.contains(&self.role.as_str()) {
            return Err(ConfigError::new(
                format!("{key}.role"),
                format!("use one of {:?}", crate::policy::VENUE_ROLES),
            ));
        }
        Ok(())
    }
}

/// A dated change of the rota (调班): on `date` (within `start`–`end`, or
/// the whole day), these people are on duty in `role` for `region_id`
/// instead of the pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DutyOverride {
    /// `YYYY-MM-DD` (Beijing time).
    pub date: String,
    /// Region.
    pub region_id: String,
    /// Role.
    pub role: String,
    /// The person on duty.
    pub person_id: String,
    /// Order.
    #[serde(default)]
    pub rank: i64,
    /// `HH:MM`, with `end`; none = the whole day.
    #[serde(default)]
    pub start: Option<String>,
    /// `HH:MM`; not after `start` = overnight.
    #[serde(default)]
    pub end: Option<String>,
}

impl DutyOverride {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_role(&format!("{key}.role"), &self.role)?;
        check_date(&format!("{key}.date"), &self.date)?;
        window(key, self.start.as_deref(), self.end.as_deref())?;
        Ok(())
    }
}

/// A public holiday (法定节假日).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Its name (`国庆节`).
    pub name: String,
}

impl Holiday {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_date(&format!("{key}.date"), &self.date)
    }
}

fn check_date(key: &str, d: &str) -> Result<(), ConfigError> {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| ConfigError::new(key, "a date YYYY-MM-DD"))
}

fn check_id(key: &str, id: &str) -> Result<(), ConfigError> {
    if anquan_protocol::Id::is_valid(id) {
        Ok(())
    } else {
        Err(ConfigError::new(key, "must match [A-Za-z0-9_-]{1,64}"))
    }
}

fn invalid(e: ConfigError) -> Error {
    Error::Invalid(e.to_string())
}

/// Inserts or replaces a region.
pub async fn put_region(c: &mut AnyConnection, r: &Region) -> Result<()> {
    r.validate("region").map_err(invalid)?;
    if let Some(p) = &r.parent_id {
        exists(c, "regions", p, "region").await?;
    }
    sqlx::query("DELETE FROM regions WHERE id = $1")
        .bind(&r.id)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO regions (id, name, tier, parent_id) VALUES ($1, $2, $3, $4)")
        .bind(&r.id)
        .bind(&r.name)
        .bind(&r.tier)
        .bind(r.parent_id.clone())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Inserts or replaces a venue (keeps its 重点风控 flag).
pub async fn put_venue(c: &mut AnyConnection, v: &Venue) -> Result<()> {
    v.validate("venue").map_err(invalid)?;
    exists(c, "regions", &v.region_id, "region").await?;
    if let Some(g) = &v.grid_id {
        exists(c, "grids", g, "grid").await?;
    }
    let key_risk: i64 = sqlx::query("SELECT key_risk FROM venues WHERE id = $1")
        .bind(&v.id)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.try_get::<i64, _>("key_risk"))
        .transpose()?
        .unwrap_or(0);
    sqlx::query("DELETE FROM venues WHERE id = $1")
        .bind(&v.id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO venues (id, name, sector, address, lat, lon, region_id, site, key_risk, grid_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&v.id)
    .bind(&v.name)
    .bind(&v.sector)
    .bind(&v.address)
    .bind(v.wgs84().0)
    .bind(v.wgs84().1)
    .bind(&v.region_id)
    .bind(v.site_id().to_string())
    .bind(key_risk)
    .bind(v.grid_id.clone())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Binds a device to a venue.
pub async fn put_device(c: &mut AnyConnection, d: &Device) -> Result<()> {
    check_id("device.id", &d.id).map_err(invalid)?;
    if anquan_protocol::DeviceKind::parse(&d.kind).is_none() {
        return Err(Error::Invalid(format!(
            "device.kind: unknown kind {:?}; use gas, electrical, water_pressure, crane or fire_panel",
            d.kind
        )));
    }
    if let Some(r) = &d.registration
        && (r.trim().is_empty() || r.chars().count() > 32 || r.chars().any(char::is_control))
    {
        return Err(Error::Invalid(
            "device.registration: 1 to 32 characters, no control characters".into(),
        ));
    }
    exists(c, "venues", &d.venue_id, "venue").await?;
    sqlx::query("DELETE FROM devices WHERE id = $1")
        .bind(&d.id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO devices (id, venue_id, kind, name, location, registration) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&d.id)
    .bind(&d.venue_id)
    .bind(&d.kind)
    .bind(d.name.clone())
    .bind(d.location.clone())
    .bind(d.registration.clone())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Inserts or replaces a person.
pub async fn put_person(c: &mut AnyConnection, p: &Person) -> Result<()> {
    p.validate("person").map_err(invalid)?;
    exists(c, "regions", &p.region_id, "region").await?;
    sqlx::query("DELETE FROM people WHERE id = $1")
        .bind(&p.id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO people (id, name, role, region_id, email, webhook, phone, lang, channels) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.role)
    .bind(&p.region_id)
    .bind(p.email.clone())
    .bind(p.webhook.clone())
    .bind(p.phone.clone())
    .bind(p.lang.clone())
    .bind(p.channels.clone())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Adds a rota entry (an entry with the same person, role, region, rank
/// and shift replaces it). Returns its id.
pub async fn put_duty(c: &mut AnyConnection, d: &Duty) -> Result<String> {
    d.validate("duty").map_err(invalid)?;
    exists(c, "people", &d.person_id, "person").await?;
    exists(c, "regions", &d.region_id, "region").await?;
    let win = window("duty", d.start.as_deref(), d.end.as_deref()).map_err(invalid)?;
    let days = d
        .days
        .as_deref()
        .and_then(crate::rota::parse_days)
        .map(crate::rota::days_text);
    let mut id = format!("{}:{}:{}:{}", d.person_id, d.role, d.region_id, d.rank);
    if days.is_some() || win.is_some() {
        id.push_str(&format!(
            ":{}:{}",
            days.clone().unwrap_or_default(),
            win.map(|(a, b)| format!("{}-{}", crate::rota::hhmm(a), crate::rota::hhmm(b)))
                .unwrap_or_default()
        ));
    }
    sqlx::query("DELETE FROM duty WHERE id = $1")
        .bind(&id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO duty (id, person_id, role, region_id, rank, from_ms, until_ms, days, start_min, end_min, holidays) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(&d.person_id)
    .bind(&d.role)
    .bind(&d.region_id)
    .bind(d.rank)
    .bind(d.from_ms)
    .bind(d.until_ms)
    .bind(days)
    .bind(win.map(|w| w.0))
    .bind(win.map(|w| w.1))
    .bind(d.holidays.clone())
    .execute(&mut *c)
    .await?;
    Ok(id)
}

/// Inserts or replaces a grid and its officers.
pub async fn put_grid(c: &mut AnyConnection, g: &Grid) -> Result<()> {
    g.validate("grid").map_err(invalid)?;
    exists(c, "regions", &g.region_id, "region").await?;
    for o in &g.officers {
        exists(c, "people", o, "person").await?;
    }
    for sql in [
        "DELETE FROM grids WHERE id = $1",
        "DELETE FROM grid_people WHERE grid_id = $1",
    ] {
        sqlx::query(sql).bind(&g.id).execute(&mut *c).await?;
    }
    sqlx::query("INSERT INTO grids (id, name, region_id) VALUES ($1, $2, $3)")
        .bind(&g.id)
        .bind(&g.name)
        .bind(&g.region_id)
        .execute(&mut *c)
        .await?;
    for (rank, o) in g.officers.iter().enumerate() {
        sqlx::query(
            "INSERT INTO grid_people (grid_id, person_id, rank) VALUES ($1, $2, $3) \
             ON CONFLICT (grid_id, person_id) DO NOTHING",
        )
        .bind(&g.id)
        .bind(o)
        .bind(rank as i64)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

/// Links a person to a venue in a role. Returns the link's id
/// (`venue/person/role`).
pub async fn put_venue_person(c: &mut AnyConnection, l: &VenuePerson) -> Result<String> {
    l.validate("venue_person").map_err(invalid)?;
    exists(c, "venues", &l.venue_id, "venue").await?;
    exists(c, "people", &l.person_id, "person").await?;
    let id = format!("{}/{}/{}", l.venue_id, l.person_id, l.role);
    sqlx::query("DELETE FROM venue_people WHERE id = $1")
        .bind(&id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO venue_people (id, venue_id, person_id, role, rank) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&l.venue_id)
    .bind(&l.person_id)
    .bind(&l.role)
    .bind(l.rank)
    .execute(&mut *c)
    .await?;
    Ok(id)
}

/// Adds a dated override of the rota. Returns its id.
pub async fn put_duty_override(c: &mut AnyConnection, o: &DutyOverride) -> Result<String> {
    o.validate("duty_override").map_err(invalid)?;
    exists(c, "people", &o.person_id, "person").await?;
    exists(c, "regions", &o.region_id, "region").await?;
    let win = window("duty_override", o.start.as_deref(), o.end.as_deref()).map_err(invalid)?;
    let id = format!(
        "{}:{}:{}:{}:{}",
        o.date,
        o.region_id,
        o.role,
        o.person_id,
        win.map(|(a, b)| format!("{}-{}", crate::rota::hhmm(a), crate::rota::hhmm(b)))
            .unwrap_or_default()
    );
    sqlx::query("DELETE FROM duty_overrides WHERE id = $1")
        .bind(&id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO duty_overrides (id, day, region_id, role, person_id, rank, start_min, end_min) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&o.date)
    .bind(&o.region_id)
    .bind(&o.role)
    .bind(&o.person_id)
    .bind(o.rank)
    .bind(win.map(|w| w.0))
    .bind(win.map(|w| w.1))
    .execute(&mut *c)
    .await?;
    Ok(id)
}

/// Inserts or replaces a holiday.
pub async fn put_holiday(c: &mut AnyConnection, h: &Holiday) -> Result<()> {
    h.validate("holiday").map_err(invalid)?;
    sqlx::query("DELETE FROM holidays WHERE day = $1")
        .bind(&h.date)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO holidays (day, name) VALUES ($1, $2)")
        .bind(&h.date)
        .bind(&h.name)
        .execute(&mut *c)
        .await?;
    Ok(())
}

async fn exists(c: &mut AnyConnection, table: &str, id: &str, what: &'static str) -> Result<()> {
    let sql = format!("SELECT id FROM {table} WHERE id = $1");
    match sqlx::query(&sql).bind(id).fetch_optional(&mut *c).await? {
        Some(_) => Ok(()),
        None => Err(Error::Invalid(format!(
            "{what} {id:?} does not exist; create it first"
        ))),
    }
}

/// 422 naming `key` unless person `id` is in the registry.
pub async fn check_person(c: &mut AnyConnection, key: &str, id: &str) -> Result<()> {
    check_ref(c, "people", key, "person", id).await
}

/// 422 naming `key` unless region `id` is in the registry.
pub async fn check_region(c: &mut AnyConnection, key: &str, id: &str) -> Result<()> {
    check_ref(c, "regions", key, "region", id).await
}

/// 422 unless the region and the venue (when given) exist and the venue
/// lies in that region.
pub async fn check_place(c: &mut AnyConnection, region: &str, venue: Option<&str>) -> Result<()> {
    check_region(c, "region_id", region).await?;
    if let Some(v) = venue {
        check_ref(c, "venues", "venue_id", "venue", v).await?;
        let chain = region_chain_of_venue(c, v).await?;
        if !chain.iter().any(|r| r == region) {
            return Err(Error::Invalid(format!(
                "venue_id: venue {v:?} is not in region {region:?}"
            )));
        }
    }
    Ok(())
}

/// The region of venue `id`, if the venue exists.
pub async fn venue_region(c: &mut AnyConnection, id: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT region_id FROM venues WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *c)
            .await?,
    )
}

/// The regions a venue lies in: its own and every ancestor.
async fn region_chain_of_venue(c: &mut AnyConnection, venue: &str) -> Result<Vec<String>> {
    let r: String = sqlx::query_scalar("SELECT region_id FROM venues WHERE id = $1")
        .bind(venue)
        .fetch_one(&mut *c)
        .await?;
    let mut chain = Vec::new();
    let mut cur = Some(r);
    // Bounded: a cycle or a deep tree cannot loop (the seed refuses both).
    while let Some(id) = cur {
        if chain.contains(&id) || chain.len() > 8 {
            break;
        }
        cur =
            sqlx::query_scalar::<_, Option<String>>("SELECT parent_id FROM regions WHERE id = $1")
                .bind(&id)
                .fetch_optional(&mut *c)
                .await?
                .flatten();
        chain.push(id);
    }
    Ok(chain)
}

async fn check_ref(
    c: &mut AnyConnection,
    table: &str,
    key: &str,
    what: &str,
    id: &str,
) -> Result<()> {
    let sql = format!("SELECT id FROM {table} WHERE id = $1");
    match sqlx::query(&sql).bind(id).fetch_optional(&mut *c).await? {
        Some(_) => Ok(()),
        None => Err(Error::Invalid(format!(
            "{key}: no {what} {id:?} in the registry"
        ))),
    }
}

/// Inserts the `[seed]` rows (replacing rows with the same ids).
pub async fn seed(c: &mut AnyConnection, s: &crate::config::Seed) -> Result<()> {
    for r in &s.regions {
        put_region(c, r).await?;
    }
    // Grids before venues (a venue names its grid), their officers after
    // the people.
    for g in &s.grids {
        put_grid(
            c,
            &Grid {
                officers: Vec::new(),
                ..g.clone()
            },
        )
        .await?;
    }
    for v in &s.venues {
        put_venue(c, v).await?;
    }
    for d in &s.devices {
        put_device(c, d).await?;
    }
    for p in &s.people {
        put_person(c, p).await?;
    }
    for g in &s.grids {
        put_grid(c, g).await?;
    }
    for l in &s.venue_people {
        put_venue_person(c, l).await?;
    }
    for d in &s.duty {
        put_duty(c, d).await?;
    }
    for o in &s.duty_overrides {
        put_duty_override(c, o).await?;
    }
    for h in &s.holidays {
        put_holiday(c, h).await?;
    }
    Ok(())
}

/// The people on duty now in `role` for `region` (the nearest region up
/// from it that has someone): tasks and reminders.
pub async fn on_duty(
    c: &mut AnyConnection,
    region: Option<&str>,
    role: &str,
    now_ms: i64,
) -> Result<Vec<String>> {
    let mut dir = crate::directory::Directory::new();
    let regions: Vec<String> = region.map(str::to_string).into_iter().collect();
    dir.load(c, &[], &[], &[], &regions, now_ms).await?;
    Ok(dir.nearest_on_duty(region, role, now_ms))
}

/// The registry tables the API lists, writes and deletes from: the path
/// name, the table, the order, the key column.
pub const TABLES: &[(&str, &str, &str, &str)] = &[
    ("regions", "regions", "id", "id"),
    ("venues", "venues", "id", "id"),
    ("devices", "devices", "id", "id"),
    ("people", "people", "id", "id"),
    ("duty", "duty", "region_id, role, rank, id", "id"),
    ("grids", "grids", "id", "id"),
    (
        "venue-people",
        "venue_people",
        "venue_id, role, rank, person_id",
        "id",
    ),
    (
        "grid-people",
        "grid_people",
        "grid_id, rank, person_id",
        "grid_id",
    ),
    (
        "duty-overrides",
        "duty_overrides",
        "day, region_id, role, rank",
        "id",
    ),
    ("holidays", "holidays", "day", "day"),
];

fn table(what: &str) -> Result<&'static (&'static str, &'static str, &'static str, &'static str)> {
    TABLES
        .iter()
        .find(|t| t.0 == what)
        .ok_or_else(|| Error::NotFound {
            what: "registry table",
            id: what.into(),
        })
}

/// Every row of a registry table, typed as the table's.
pub async fn list(c: &mut AnyConnection, what: &str) -> Result<Vec<RegistryListRow>> {
    use crate::rows::RegistryListRow as L;
    async fn all<T: Columns>(
        c: &mut AnyConnection,
        table: &str,
        order: &str,
        as_row: fn(T) -> L,
    ) -> Result<Vec<L>> {
        let sql = format!("SELECT {} FROM {table} ORDER BY {order}", T::select());
        let rows = sqlx::query_as::<_, T>(&sql).fetch_all(&mut *c).await?;
        Ok(rows.into_iter().map(as_row).collect())
    }
    let &(name, table, order, _) = table(what)?;
    match name {
        "regions" => all(c, table, order, L::Region).await,
        "venues" => all(c, table, order, L::Venue).await,
        "devices" => all(c, table, order, L::Device).await,
        "people" => all(c, table, order, L::Person).await,
        "duty" => all(c, table, order, L::Duty).await,
        "grids" => all(c, table, order, L::Grid).await,
        "venue-people" => all(c, table, order, L::VenuePerson).await,
        "grid-people" => all(c, table, order, L::GridPerson).await,
        "duty-overrides" => all(c, table, order, L::Override).await,
        "holidays" => all(c, table, order, L::Holiday).await,
        _ => Err(Error::NotFound {
            what: "registry table",
            id: what.into(),
        }),
    }
}

/// Deletes a registry row (a grid's officers go with it).
pub async fn delete(c: &mut AnyConnection, what: &str, id: &str) -> Result<()> {
    let (name, table, _, key) = table(what)?;
    if *name == "grid-people" {
        return Err(Error::Invalid(
            "grid officers are written with their grid: PUT /api/v1/registry/grids".into(),
        ));
    }
    let n = sqlx::query(&format!("DELETE FROM {table} WHERE {key} = $1"))
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(Error::NotFound {
            what: "row",
            id: id.into(),
        });
    }
    if *name == "grids" {
        sqlx::query("DELETE FROM grid_people WHERE grid_id = $1")
            .bind(id)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn venue_coordinates_copied_from_amap_are_stored_in_wgs84() {
        let amap = "id = \"s1\"\nname = \"Scenic area\"\nsector = \"scenic_area\"\naddress = \"1 Lake Road\"\n\
                    lat = 39.91640428150164\nlon = 116.41024449916938\nregion_id = \"town\"\ndatum = \"gcj02\"\n";
        let mut v: Venue = toml::from_str(amap).unwrap();
        let (lat, lon) = v.wgs84();
        assert!((lat.unwrap() - 39.915).abs() < 1e-8, "{lat:?}");
        assert!((lon.unwrap() - 116.404).abs() < 1e-8, "{lon:?}");
        v.datum = crate::geo::Datum::Wgs84;
        assert_eq!(v.wgs84(), (v.lat, v.lon), "WGS-84 is stored as written");
        let mars = "id = \"s1\"\nname = \"n\"\nsector = \"s\"\naddress = \"a\"\nregion_id = \"r\"\ndatum = \"mars\"\n";
        assert!(toml::from_str::<Venue>(mars).is_err(), "an unknown datum");
    }
}
