//! The registry: regions (city → county → town), venues, devices bound to
//! venues, people with roles and the on-duty roster. Routing of a warning:
//! for each role of the level's `[[routing]]` chain, the people on duty in
//! that role in the venue's region, then its county, then its city (nearest
//! first, by roster rank) — one ordered call list.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use crate::config::{ConfigError, check_role};
use crate::db::opt_str;
use crate::error::{Error, Result};

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
    /// Latitude (WGS-84).
    #[serde(default)]
    pub lat: Option<f64>,
    /// Longitude.
    #[serde(default)]
    pub lon: Option<f64>,
    /// Region (usually a town).
    pub region_id: String,
    /// The gateway's site id, when it differs from `id`.
    #[serde(default)]
    pub site: Option<String>,
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

    /// The site id the gateway uses.
    pub fn site_id(&self) -> &str {
        self.site.as_deref().unwrap_or(&self.id)
    }
}

/// A device bound to a venue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Device id (as in the wire contract).
    pub id: String,
    /// Venue.
    pub venue_id: String,
    /// `gas`, `electrical`, `water_pressure`, `crane`.
    pub kind: String,
}

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
}

impl Person {
    /// Checks the values.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check_id(&format!("{key}.id"), &self.id)?;
        check_role(&format!("{key}.role"), &self.role)?;
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
        if self.email.is_none() && self.webhook.is_none() {
            return Err(ConfigError::new(
                format!("{key}.email"),
                "give an e-mail address or a webhook, or the person cannot be notified",
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
        "INSERT INTO venues (id, name, sector, address, lat, lon, region_id, site, key_risk) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&v.id)
    .bind(&v.name)
    .bind(&v.sector)
    .bind(&v.address)
    .bind(v.lat)
    .bind(v.lon)
    .bind(&v.region_id)
    .bind(v.site_id().to_string())
    .bind(key_risk)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Binds a device to a venue.
pub async fn put_device(c: &mut AnyConnection, d: &Device) -> Result<()> {
    check_id("device.id", &d.id).map_err(invalid)?;
    if anquan_protocol::DeviceKind::parse(&d.kind).is_none() {
        return Err(Error::Invalid(format!(
            "device.kind: unknown kind {:?}; use gas, electrical, water_pressure or crane",
            d.kind
        )));
    }
    exists(c, "venues", &d.venue_id, "venue").await?;
    sqlx::query("DELETE FROM devices WHERE id = $1")
        .bind(&d.id)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO devices (id, venue_id, kind) VALUES ($1, $2, $3)")
        .bind(&d.id)
        .bind(&d.venue_id)
        .bind(&d.kind)
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
        "INSERT INTO people (id, name, role, region_id, email, webhook) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&p.id)
    .bind(&p.name)
    .bind(&p.role)
    .bind(&p.region_id)
    .bind(p.email.clone())
    .bind(p.webhook.clone())
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// Adds a roster entry (an identical entry is kept once).
pub async fn put_duty(c: &mut AnyConnection, d: &Duty) -> Result<String> {
    check_role("duty.role", &d.role).map_err(invalid)?;
    exists(c, "people", &d.person_id, "person").await?;
    exists(c, "regions", &d.region_id, "region").await?;
    let id = format!("{}:{}:{}:{}", d.person_id, d.role, d.region_id, d.rank);
    sqlx::query("DELETE FROM duty WHERE id = $1")
        .bind(&id)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO duty (id, person_id, role, region_id, rank, from_ms, until_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(&d.person_id)
    .bind(&d.role)
    .bind(&d.region_id)
    .bind(d.rank)
    .bind(d.from_ms)
    .bind(d.until_ms)
    .execute(&mut *c)
    .await?;
    Ok(id)
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

/// The regions a venue lies in: its own and every ancestor.
async fn region_chain_of_venue(c: &mut AnyConnection, venue: &str) -> Result<Vec<String>> {
    let r: String = sqlx::query_scalar("SELECT region_id FROM venues WHERE id = $1")
        .bind(venue)
        .fetch_one(&mut *c)
        .await?;
    region_chain(c, &r).await
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
    for v in &s.venues {
        put_venue(c, v).await?;
    }
    for d in &s.devices {
        put_device(c, d).await?;
    }
    for p in &s.people {
        put_person(c, p).await?;
    }
    for d in &s.duty {
        put_duty(c, d).await?;
    }
    Ok(())
}

/// `region` and its ancestors, nearest first.
pub async fn region_chain(c: &mut AnyConnection, region: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = Some(region.to_string());
    while let Some(id) = cur {
        if out.contains(&id) || out.len() > 8 {
            break;
        }
        let row = sqlx::query("SELECT parent_id FROM regions WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *c)
            .await?;
        out.push(id);
        cur = match row {
            Some(r) => opt_str(&r, "parent_id")?,
            None => None,
        };
    }
    Ok(out)
}

/// The region of `tier` (`county`, `city`) enclosing `region`, if any.
pub async fn ancestor_of_tier(
    c: &mut AnyConnection,
    region: &str,
    tier: &str,
) -> Result<Option<String>> {
    for id in region_chain(c, region).await? {
        let t: Option<String> = sqlx::query("SELECT tier FROM regions WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *c)
            .await?
            .map(|r| r.try_get::<String, _>("tier"))
            .transpose()?;
        if t.as_deref() == Some(tier) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// A person on a call list, with the channels of their `people` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    /// The person.
    pub id: String,
    /// Whether a `people` row exists (a roster may name someone deleted).
    pub registered: bool,
    /// E-mail address.
    pub email: Option<String>,
    /// Webhook URL.
    pub webhook: Option<String>,
}

/// The people on duty at `now_ms` in `role` for `region` or its ancestors,
/// nearest region first, then by rank; each person once.
pub async fn on_duty(
    c: &mut AnyConnection,
    region: Option<&str>,
    role: &str,
    now_ms: i64,
) -> Result<Vec<String>> {
    Ok(on_duty_channels(c, region, role, now_ms)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect())
}

/// [`on_duty`] with each person's channels, in the same query (intake
/// needs them for the call it queues).
pub async fn on_duty_channels(
    c: &mut AnyConnection,
    region: Option<&str>,
    role: &str,
    now_ms: i64,
) -> Result<Vec<OnCall>> {
    // One query (intake runs this per alarm): the region and its ancestors
    // (at most 9 levels, as `region_chain`), nearest first; an
    // unregistered site gets the cities' rosters.
    let rows = match region {
        Some(r) => {
            sqlx::query(
                "WITH RECURSIVE chain (id, depth) AS ( \
                   SELECT CAST($1 AS TEXT), CAST(0 AS BIGINT) \
                   UNION ALL \
                   SELECT r.parent_id, c.depth + 1 FROM chain c JOIN regions r ON r.id = c.id \
                   WHERE r.parent_id IS NOT NULL AND c.depth < 8) \
                 SELECT d.person_id AS person_id, p.id AS pid, p.email AS email, p.webhook AS webhook \
                 FROM chain c JOIN duty d ON d.region_id = c.id LEFT JOIN people p ON p.id = d.person_id \
                 WHERE d.role = $2 AND (d.from_ms IS NULL OR d.from_ms <= $3) \
                 AND (d.until_ms IS NULL OR d.until_ms > $3) \
                 ORDER BY c.depth, d.rank, d.person_id",
            )
            .bind(r)
            .bind(role)
            .bind(now_ms)
            .fetch_all(&mut *c)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT d.person_id AS person_id, p.id AS pid, p.email AS email, p.webhook AS webhook \
                 FROM duty d JOIN regions r ON r.id = d.region_id LEFT JOIN people p ON p.id = d.person_id \
                 WHERE r.parent_id IS NULL AND d.role = $1 \
                 AND (d.from_ms IS NULL OR d.from_ms <= $2) AND (d.until_ms IS NULL OR d.until_ms > $2) \
                 ORDER BY r.id, d.rank, d.person_id",
            )
            .bind(role)
            .bind(now_ms)
            .fetch_all(&mut *c)
            .await?
        }
    };
    let mut out: Vec<OnCall> = Vec::new();
    for r in rows {
        let id: String = r.try_get("person_id")?;
        if out.iter().any(|o| o.id == id) {
            continue;
        }
        out.push(OnCall {
            id,
            registered: opt_str(&r, "pid")?.is_some(),
            email: opt_str(&r, "email")?,
            webhook: opt_str(&r, "webhook")?,
        });
    }
    Ok(out)
}

/// The first `n` (at least) of the call list for `roles` with their
/// channels (see [`call_list_upto`]).
pub async fn call_list_channels_upto(
    c: &mut AnyConnection,
    roles: &[String],
    region: Option<&str>,
    now_ms: i64,
    n: usize,
) -> Result<Vec<OnCall>> {
    let mut out: Vec<OnCall> = Vec::new();
    for role in roles {
        if out.len() >= n {
            break;
        }
        for p in on_duty_channels(c, region, role, now_ms).await? {
            if !out.iter().any(|o| o.id == p.id) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// The ordered call list for a warning at `level` in `region`.
pub async fn call_list(
    c: &mut AnyConnection,
    roles: &[String],
    region: Option<&str>,
    now_ms: i64,
) -> Result<Vec<String>> {
    call_list_upto(c, roles, region, now_ms, usize::MAX).await
}

/// The first `n` (at least) of [`call_list`]: it stops looking once it has
/// them. Intake needs only the first person (or the one at the warning's
/// rank), and each role costs a walk up the region chain.
pub async fn call_list_upto(
    c: &mut AnyConnection,
    roles: &[String],
    region: Option<&str>,
    now_ms: i64,
    n: usize,
) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for role in roles {
        if out.len() >= n {
            break;
        }
        for p in on_duty(c, region, role, now_ms).await? {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Columns of the `regions` list.
pub const REGION_COLS: &[&str] = &["id", "name", "tier", "parent_id"];
/// Columns of the `venues` list (not the coordinates; with `key_risk`).
pub const VENUE_COLS: &[&str] = &[
    "id",
    "name",
    "sector",
    "address",
    "region_id",
    "site",
    "key_risk",
];
/// Columns of the `devices` list.
pub const DEVICE_COLS: &[&str] = &["id", "venue_id", "kind"];
/// Columns of the `people` list.
pub const PERSON_COLS: &[&str] = &["id", "name", "role", "region_id", "email", "webhook"];
/// Columns of the `duty` list (not the validity window).
pub const DUTY_COLS: &[&str] = &["id", "person_id", "role", "region_id", "rank"];

/// A JSON list of every row of a registry table.
pub async fn list(c: &mut AnyConnection, what: &str) -> Result<Vec<serde_json::Value>> {
    let (table, cols, order): (&str, &[&str], &str) = match what {
        "regions" => ("regions", REGION_COLS, "id"),
        "venues" => ("venues", VENUE_COLS, "id"),
        "devices" => ("devices", DEVICE_COLS, "id"),
        "people" => ("people", PERSON_COLS, "id"),
        "duty" => ("duty", DUTY_COLS, "region_id, role, rank"),
        _ => {
            return Err(Error::NotFound {
                what: "registry table",
                id: what.into(),
            });
        }
    };
    let sql = format!("SELECT {} FROM {table} ORDER BY {order}", cols.join(", "));
    let rows = sqlx::query(&sql).fetch_all(&mut *c).await?;
    rows.iter().map(|r| crate::db::row_json(r, cols)).collect()
}

/// Deletes a registry row.
pub async fn delete(c: &mut AnyConnection, what: &str, id: &str) -> Result<()> {
    let table = match what {
        "regions" | "venues" | "devices" | "people" | "duty" => what,
        _ => {
            return Err(Error::NotFound {
                what: "registry table",
                id: what.into(),
            });
        }
    };
    let n = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
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
    Ok(())
}
