//! The rows the API and the web read straight from the database, typed
//! once: each struct (declared with [`crate::db::row!`]) is the `SELECT`
//! list ([`Columns::COLS`]), the decoder (`sqlx::FromRow`), the serializer
//! and the OpenAPI schema. Every column is there, nullable where the
//! column is, as the JSON type of its SQL type (integers for `BIGINT`,
//! numbers for `DOUBLE PRECISION`, strings for `TEXT`); `tests/api_sqlite.rs`
//! validates the rows the running API sends against the served schemas.

use serde::Serialize;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::db::row;
use crate::maintenance::{Held, Window};

/// A struct of `row` and `more` (both flattened into one JSON object),
/// whose schema is `$row`'s with the properties of `$more` added.
macro_rules! joined {
    ($(#[$doc:meta])* $name:ident = $row:ident + $more:ident, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug, Serialize)]
        pub struct $name {
            /// The row.
            #[serde(flatten)]
            pub row: $row,
            /// What is added to it.
            #[serde(flatten)]
            pub more: $more,
        }

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                joined($row::schema(), $more::schema(), $description)
            }
        }

        impl ToSchema for $name {
            fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
                $row::schemas(out);
                $more::schemas(out);
            }
        }
    };
}

row! {
    /// A warning (`GET /api/v1/warnings`).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Warning {
        /// Id.
        pub id: String,
        /// The alarm it tracks: `site/device/rule`.
        pub alarm_key: String,
        /// The venue of the site (none for an unregistered site).
        #[schema(required = true)]
        pub venue_id: Option<String>,
        /// The venue's region (none for an unregistered site).
        #[schema(required = true)]
        pub region_id: Option<String>,
        /// The gateway's site id.
        pub site: String,
        /// Device id.
        pub device: String,
        /// Device kind (`gas`, `electrical`, `water_pressure`, `crane`, `fire_panel`).
        pub kind: String,
        /// The rule that fired.
        pub rule: String,
        /// The level now (`blue`, `yellow`, `orange`, `red`).
        pub level: String,
        /// The highest level reached.
        pub max_level: String,
        /// `RAISED`, `NOTIFIED`, `ACKED`, `DISPOSING` or `RESOLVED`.
        pub state: String,
        /// 1 once the alarm was cleared at the source, else 0.
        pub clearable: i64,
        /// After confirmation: 1 a false alarm, 0 real; none before.
        #[schema(required = true)]
        pub false_alarm: Option<i64>,
        /// When it was raised (Unix ms).
        pub raised_ms: i64,
        /// When it was acknowledged (Unix ms).
        #[schema(required = true)]
        pub acked_ms: Option<i64>,
        /// Who acknowledged it (registry person id).
        #[schema(required = true)]
        pub acked_by: Option<String>,
        /// When it was resolved (Unix ms).
        #[schema(required = true)]
        pub resolved_ms: Option<i64>,
        /// The 叫应 ladder's step: 0 = the first calls, k = the chain's k-th
        /// step; -1 before any call.
        pub ladder_step: i64,
        /// When an acknowledgement is due before the next step is called (Unix
        /// ms); none when acknowledged, cleared or the chain is exhausted.
        #[schema(required = true)]
        pub ack_due_ms: Option<i64>,
        /// The latest value of the reading (none for warnings older than this
        /// column).
        #[schema(required = true)]
        pub value: Option<f64>,
        /// Its threshold.
        #[schema(required = true)]
        pub threshold: Option<f64>,
        /// How it was acknowledged: `api`, `web`, `link`, `sms`, `voice`.
        #[schema(required = true)]
        pub acked_via: Option<String>,
    }
}

row! {
    /// One alarm event of a warning.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct WarningEvent {
        /// The gateway's event id.
        pub event_id: String,
        /// `raised`, `escalated`, `downgraded` or `cleared`.
        pub state: String,
        /// The level (`blue`, `yellow`, `orange`, `red`).
        pub level: String,
        /// The measured value.
        pub value: f64,
        /// The threshold it crossed.
        pub threshold: f64,
        /// When, at the gateway (Unix ms).
        pub ts_ms: i64,
    }
}

/// The alarm events of a warning.
#[derive(Debug, Serialize, ToSchema)]
pub struct Events {
    /// Its alarm events, oldest first.
    pub events: Vec<WarningEvent>,
}

joined! {
    /// One warning with its alarm events (`GET /api/v1/warnings/{id}`).
    WarningDetail = Warning + Events,
    "A warning with its alarm events"
}

row! {
    /// A task (`GET /api/v1/tasks`).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Task {
        /// Id.
        pub id: String,
        /// `inspection`, `disposal`, `rectification`, … (the template's kind).
        pub kind: String,
        /// Title.
        pub title: String,
        /// Venue.
        #[schema(required = true)]
        pub venue_id: Option<String>,
        /// Region.
        #[schema(required = true)]
        pub region_id: Option<String>,
        /// The warning a disposal task handles.
        #[schema(required = true)]
        pub warning_id: Option<String>,
        /// The warning's level, for a disposal task.
        #[schema(required = true)]
        pub level: Option<String>,
        /// The assigned person (registry id).
        #[schema(required = true)]
        pub assignee_id: Option<String>,
        /// `PLANNED`, `ASSIGNED`, `IN_PROGRESS`, `SUBMITTED`, `DONE`, `OVERDUE`, …
        pub state: String,
        /// Due (Unix ms).
        pub due_ms: i64,
        /// The evidence submitted (JSON text: checklist results, notes).
        #[schema(required = true)]
        pub evidence: Option<String>,
        /// Created (Unix ms).
        pub created_ms: i64,
        /// Done (Unix ms).
        #[schema(required = true)]
        pub done_ms: Option<i64>,
    }
}

/// The photos of a task or hazard.
#[derive(Debug, Serialize, ToSchema)]
pub struct Photos {
    /// Its photo evidence (a hazard's: the 验收记录 photos), oldest first.
    pub photos: Vec<Evidence>,
}

joined! {
    /// One task with its photos (`GET /api/v1/tasks/{id}`).
    TaskDetail = Task + Photos,
    "A task with its photos"
}

row! {
    /// A hazard (`GET /api/v1/hazards`).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Hazard {
        /// Id.
        pub id: String,
        /// 挂牌督办: the tier that listed it (`county`, `city`).
        #[schema(required = true)]
        pub listed_level: Option<String>,
        /// 挂牌督办: who listed it (registry person id).
        #[schema(required = true)]
        pub listed_by: Option<String>,
        /// Venue.
        pub venue_id: String,
        /// The venue's region.
        #[schema(required = true)]
        pub region_id: Option<String>,
        /// Category.
        pub category: String,
        /// Title.
        pub title: String,
        /// Where it came from (`inspection`, `alarm`, `report`, …).
        pub source: String,
        /// The row it came from (a task or warning id).
        #[schema(required = true)]
        pub source_ref: Option<String>,
        /// `general` or `major`, once judged.
        #[schema(required = true)]
        pub severity: Option<String>,
        /// `DETECTED`, `JUDGED`, `FILED`, `RECTIFYING`, `INTERIM_CONTROL`,
        /// `VERIFYING`, `CLOSED`, `ARCHIVED`, `REOPENED`.
        pub state: String,
        /// The person responsible.
        #[schema(required = true)]
        pub owner_id: Option<String>,
        /// 四项清单: the problem.
        #[schema(required = true)]
        pub problem: Option<String>,
        /// 四项清单: the measures.
        #[schema(required = true)]
        pub measures: Option<String>,
        /// 四项清单: the standard.
        #[schema(required = true)]
        pub standard: Option<String>,
        /// 四项清单: who is responsible.
        #[schema(required = true)]
        pub responsibility: Option<String>,
        /// Funds (major hazards).
        #[schema(required = true)]
        pub funds: Option<String>,
        /// Plan (major hazards).
        #[schema(required = true)]
        pub plan: Option<String>,
        /// 验收: the accepting unit.
        #[schema(required = true)]
        pub acceptance_unit: Option<String>,
        /// 验收: the acceptance record.
        #[schema(required = true)]
        pub acceptance_record: Option<String>,
        /// 验收: the signer.
        #[schema(required = true)]
        pub signer: Option<String>,
        /// During interim control: who watches.
        #[schema(required = true)]
        pub interim_watcher: Option<String>,
        /// 1 when a penalty case was opened, else 0.
        pub penalty_case: i64,
        /// Due (Unix ms).
        #[schema(required = true)]
        pub due_ms: Option<i64>,
        /// Created (Unix ms).
        pub created_ms: i64,
        /// Closed (Unix ms).
        #[schema(required = true)]
        pub closed_ms: Option<i64>,
        /// How often it was reopened.
        pub reopened: i64,
    }
}

joined! {
    /// One hazard with its photos (`GET /api/v1/hazards/{id}`).
    HazardDetail = Hazard + Photos,
    "A hazard with its photos"
}

row! {
    /// A photo's record.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Evidence {
        /// Id (download at `/api/v1/evidence/{id}`).
        pub id: String,
        /// `task` or `hazard`.
        pub subject: String,
        /// The task or hazard id.
        pub subject_id: String,
        /// SHA-256 of the stored file (hex).
        pub sha256: String,
        /// `image/jpeg`, `image/png` or `image/webp`.
        pub media_type: String,
        /// Size of the stored file.
        pub bytes: i64,
        /// The uploaded file's name.
        #[schema(required = true)]
        pub filename: Option<String>,
        /// Who uploaded it (registry person id).
        pub uploaded_by: String,
        /// When (Unix ms).
        pub created_ms: i64,
    }
}

row! {
    /// An audit row.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct AuditRow {
        /// When (Unix ms).
        pub at_ms: i64,
        /// Who (a person id, a web user, `system`, …).
        pub actor: String,
        /// `warning`, `task`, `hazard`, a registry table, …
        pub entity: String,
        /// Its id.
        pub entity_id: String,
        /// The state before (none for a creation).
        #[schema(required = true)]
        pub from_state: Option<String>,
        /// The state after (or the action).
        pub to_state: String,
        /// Why.
        pub reason: String,
    }
}

row! {
    /// A notification delivery.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct Delivery {
        /// Id.
        pub id: String,
        /// `warning`, `task`, `hazard`, `report`, …
        pub subject: String,
        /// Its id.
        pub subject_id: String,
        /// The person notified.
        pub person_id: String,
        /// `email`, `webhook`, `voice`, …
        pub channel: String,
        /// The address.
        pub target: String,
        /// Why (`notify`, `escalate`, `remind`, …).
        pub purpose: String,
        /// Title.
        pub title: String,
        /// `QUEUED`, `SENT`, `DELIVERED`, `UNDELIVERED` (by receipt),
        /// `FAILED`, or `MERGED` (waiting inside a digest, see
        /// `digest_id`; then `SENT` or `FAILED` with it).
        pub state: String,
        /// Send attempts so far.
        pub attempts: i64,
        /// The last failure.
        #[schema(required = true)]
        pub last_error: Option<String>,
        /// Queued (Unix ms).
        pub created_ms: i64,
        /// Sent (Unix ms).
        #[schema(required = true)]
        pub sent_ms: Option<i64>,
        /// Queue order, higher first (red calls 45, red information 40, …,
        /// reminders 0).
        pub priority: i64,
        /// The ladder step of a warning call.
        #[schema(required = true)]
        pub step: Option<i64>,
        /// The provider's message id (BizId, SerialNo, CallId).
        #[schema(required = true)]
        pub provider_id: Option<String>,
        /// The provider's receipt (delivery report, call result).
        #[schema(required = true)]
        pub receipt: Option<String>,
        /// When it came (Unix ms).
        #[schema(required = true)]
        pub receipt_ms: Option<i64>,
        /// The delivery that carried it as one digest
        /// (`notify.digest_ms`), if one did.
        #[schema(required = true)]
        pub digest_id: Option<String>,
    }
}

row! {
    /// A 重点风控 proposal.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct KeyRiskProposal {
        /// Venue.
        pub venue_id: String,
        /// Proposed (Unix ms).
        pub proposed_ms: i64,
        /// The alarms that led to it.
        pub alarms: i64,
        /// `PROPOSED`, `ACCEPTED` or `REJECTED`.
        pub state: String,
    }
}

row! {
    /// A sanction proposal.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct SanctionProposal {
        /// Id.
        pub id: String,
        /// `task` or `hazard`.
        pub subject: String,
        /// Its id.
        pub subject_id: String,
        /// `约谈`, `通报`, …
        pub proposal: String,
        /// `PROPOSED`, `ACCEPTED` or `REJECTED`.
        pub state: String,
        /// Created (Unix ms).
        pub created_ms: i64,
    }
}

row! {
    /// A stored report snapshot (without the report).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct SnapshotRow {
        /// Id (`/api/v1/report-snapshots/{id}`).
        pub id: String,
        /// The period (`daily` … `yearly`).
        pub period: String,
        /// The period's label (e.g. `2026-05`).
        pub label: String,
        /// Region.
        pub region_id: String,
        /// Generated (Unix ms).
        pub generated_ms: i64,
    }
}

row! {
    /// A venue as the registry lists it (not its coordinates; with
    /// `key_risk`).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct VenueRow {
        /// Id.
        pub id: String,
        /// Name.
        pub name: String,
        /// Sector.
        pub sector: String,
        /// Address.
        pub address: String,
        /// Latitude (WGS-84), if known.
        #[schema(required = true)]
        pub lat: Option<f64>,
        /// Longitude (WGS-84), if known.
        #[schema(required = true)]
        pub lon: Option<f64>,
        /// Region.
        pub region_id: String,
        /// The gateway's site id, when it differs from `id`.
        #[schema(required = true)]
        pub site: Option<String>,
        /// 1 while the venue is under 重点风控, else 0.
        pub key_risk: i64,
        /// Its grid cell.
        #[schema(required = true)]
        pub grid_id: Option<String>,
    }
}

row! {
    /// A duty row as the registry lists it (not the validity window).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct DutyRow {
        /// Id.
        pub id: String,
        /// The person on duty.
        pub person_id: String,
        /// The role covered.
        pub role: String,
        /// Region.
        pub region_id: String,
        /// Order among those on duty (lower first).
        pub rank: i64,
        /// A recurring shift's weekdays (`12345`; Monday = 1); none = every day.
        #[schema(required = true)]
        pub days: Option<String>,
        /// Its start, minutes after 00:00 Beijing time; none = the whole day.
        #[schema(required = true)]
        pub start_min: Option<i64>,
        /// Its end (not after the start: overnight).
        #[schema(required = true)]
        pub end_min: Option<i64>,
        /// `work`, `skip` or `only` (public holidays); none = work.
        #[schema(required = true)]
        pub holidays: Option<String>,
    }
}

row! {
    /// A grid as the registry lists it (officers in `grid-people`).
    #[derive(Debug, Serialize, ToSchema)]
    pub struct GridRow {
        /// Id.
        pub id: String,
        /// Name.
        pub name: String,
        /// Region.
        pub region_id: String,
    }
}

row! {
    /// A venue's person as the registry lists it.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct VenuePersonRow {
        /// Id (`venue/person/role`).
        pub id: String,
        /// Venue.
        pub venue_id: String,
        /// Person.
        pub person_id: String,
        /// `principal` or `safety_officer`.
        pub role: String,
        /// Order.
        pub rank: i64,
    }
}

row! {
    /// A grid officer.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct GridPersonRow {
        /// Grid.
        pub grid_id: String,
        /// Person.
        pub person_id: String,
        /// Order (0 first).
        pub rank: i64,
    }
}

row! {
    /// A dated override of the rota.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct OverrideRow {
        /// Id.
        pub id: String,
        /// `YYYY-MM-DD`.
        pub day: String,
        /// Region.
        pub region_id: String,
        /// Role.
        pub role: String,
        /// Person.
        pub person_id: String,
        /// Order.
        pub rank: i64,
        /// Start, minutes after 00:00; none = the whole day.
        #[schema(required = true)]
        pub start_min: Option<i64>,
        /// End.
        #[schema(required = true)]
        pub end_min: Option<i64>,
    }
}

row! {
    /// A public holiday.
    #[derive(Debug, Serialize, ToSchema)]
    pub struct HolidayRow {
        /// `YYYY-MM-DD`.
        pub day: String,
        /// Name.
        pub name: String,
    }
}

/// A row of `GET /api/v1/registry/{table}`: the type is the table's.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
pub enum RegistryListRow {
    /// `regions`.
    Region(crate::registry::Region),
    /// `venues`.
    Venue(VenueRow),
    /// `devices`.
    Device(crate::registry::Device),
    /// `people`.
    Person(crate::registry::Person),
    /// `duty`.
    Duty(DutyRow),
    /// `grids`.
    Grid(GridRow),
    /// `venue-people`.
    VenuePerson(VenuePersonRow),
    /// `grid-people`.
    GridPerson(GridPersonRow),
    /// `duty-overrides`.
    Override(OverrideRow),
    /// `holidays`.
    Holiday(HolidayRow),
}

row! {
    /// A warning on the dashboard as read (the venue, device and
    /// acknowledger's names joined in): see [`DashboardWarning`].
    #[derive(Debug, Serialize, ToSchema)]
    pub struct DashboardRow {
        /// Id.
        pub id: String,
        /// Region (none for an unregistered site).
        #[schema(required = true)]
        pub region_id: Option<String>,
        /// Venue (none for an unregistered site).
        #[schema(required = true)]
        pub venue_id: Option<String>,
        /// The venue's name.
        #[schema(required = true)]
        pub venue_name: Option<String>,
        /// The gateway's site id.
        pub site: String,
        /// Device id.
        pub device: String,
        /// Device kind.
        pub kind: String,
        /// The rule that fired.
        pub rule: String,
        /// The level now.
        pub level: String,
        /// The highest level reached.
        pub max_level: String,
        /// State.
        pub state: String,
        /// 1 once cleared at the source, else 0.
        pub clearable: i64,
        /// Raised (Unix ms).
        pub raised_ms: i64,
        /// Who acknowledged it.
        #[schema(required = true)]
        pub acked_by: Option<String>,
        /// The latest value.
        #[schema(required = true)]
        pub value: Option<f64>,
        /// Its threshold.
        #[schema(required = true)]
        pub threshold: Option<f64>,
        /// When the acknowledgement is due (Unix ms); none when nothing is due.
        #[schema(required = true)]
        pub ack_due_ms: Option<i64>,
        /// The 叫应 ladder's step.
        pub ladder_step: i64,
        /// The device's name.
        #[schema(required = true)]
        pub device_name: Option<String>,
        /// Where the device is.
        #[schema(required = true)]
        pub location: Option<String>,
        /// The name of who acknowledged it.
        #[schema(required = true)]
        pub acked_by_name: Option<String>,
    }
}

/// What the dashboard adds to a warning: the reading's name in the user's
/// language and its unit, the server's now (for the deadline countdown),
/// who is being called now, the 叫应 ladder.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardExtra {
    /// The reading's name in the user's language (`可燃气体浓度`).
    pub reading: String,
    /// Its unit (`%LEL`; empty when none).
    pub unit: String,
    /// The server's now (Unix ms): the countdown's reference.
    pub now_ms: i64,
    /// Who is being called now (names), while an answer is due.
    pub calling: Vec<String>,
    /// The 叫应 ladder, oldest first.
    pub ladder: Vec<crate::warnings::Rung>,
    /// Its first calls wait: `maintenance` (a maintenance window holds
    /// them) or `storm` (while alarms of the same cause may still join);
    /// none when not held.
    #[schema(required = true)]
    pub held: Option<String>,
    /// The reading is not current: its device is offline or its site's
    /// gateway is silent, so the value shown is the last one received.
    pub stale: bool,
    /// A group warning's alarms still in it (at most 50; `value` counts
    /// them all); empty for a warning of one alarm.
    pub members: Vec<crate::correlation::GroupMember>,
}

joined! {
    /// A warning on the dashboard.
    DashboardWarning = DashboardRow + DashboardExtra,
    "A warning on the dashboard"
}

/// Open warnings by level (zero-filled).
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct LevelCounts {
    /// 红.
    pub red: i64,
    /// 橙.
    pub orange: i64,
    /// 黄.
    pub yellow: i64,
    /// 蓝.
    pub blue: i64,
}

/// A device on the dashboard.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceState {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Its name (`[[seed.devices]] name`), if it has one.
    #[schema(required = true)]
    pub name: Option<String>,
    /// Its registration (a crane's 使用登记编号), if it has one.
    #[schema(required = true)]
    pub registration: Option<String>,
    /// False while the monitor believes it offline.
    pub online: bool,
    /// Its site's gateway is silent: nothing is known of it now (shown as
    /// no data, not online).
    pub no_data: bool,
}

/// `row` (an object schema) with the properties (and required ones) of
/// `more` added, and `description`.
fn joined(row: RefOr<Schema>, more: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    match (row, more) {
        (RefOr::T(Schema::Object(mut o)), RefOr::T(Schema::Object(m))) => {
            o.properties.extend(m.properties);
            o.required.extend(m.required);
            o.description = Some(description.into());
            RefOr::T(Schema::Object(o))
        }
        (other, _) => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use super::*;
    use crate::db::Columns;

    /// The property names of `T`'s schema; every one required (the rows
    /// always carry every column, null or not).
    fn props<T: PartialSchema>() -> BTreeSet<String> {
        let v = serde_json::to_value(T::schema()).unwrap();
        let props: BTreeSet<String> = v["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("not an object schema: {v}"))
            .keys()
            .cloned()
            .collect();
        let req: BTreeSet<String> = v["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(req, props, "{v}");
        props
    }

    /// The schema of a row type is its columns, every one required.
    fn is_its_columns<T: PartialSchema + Columns>() {
        let cols: BTreeSet<String> = T::COLS.iter().map(|c| c.to_string()).collect();
        assert_eq!(props::<T>(), cols);
    }

    #[test]
    fn rows_are_their_columns() {
        is_its_columns::<Warning>();
        is_its_columns::<WarningEvent>();
        is_its_columns::<Task>();
        is_its_columns::<Hazard>();
        is_its_columns::<Evidence>();
        is_its_columns::<AuditRow>();
        is_its_columns::<Delivery>();
        is_its_columns::<KeyRiskProposal>();
        is_its_columns::<SanctionProposal>();
        is_its_columns::<SnapshotRow>();
        is_its_columns::<VenueRow>();
        is_its_columns::<DutyRow>();
        is_its_columns::<GridRow>();
        is_its_columns::<VenuePersonRow>();
        is_its_columns::<GridPersonRow>();
        is_its_columns::<OverrideRow>();
        is_its_columns::<HolidayRow>();
        is_its_columns::<DashboardRow>();
    }

    /// A `DOUBLE PRECISION` column holding a whole number is still a float
    /// in the JSON, a `BIGINT` an integer.
    #[tokio::test]
    async fn doubles_stay_floats() {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE e (event_id TEXT, state TEXT, level TEXT, value DOUBLE PRECISION, \
             threshold DOUBLE PRECISION, ts_ms BIGINT)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        sqlx::query("INSERT INTO e VALUES ('e1', 'raised', 'red', 25, 20, 7)")
            .execute(&mut c)
            .await
            .unwrap();
        let sql = format!("SELECT {} FROM e", WarningEvent::select());
        let e: WarningEvent = sqlx::query_as(&sql).fetch_one(&mut c).await.unwrap();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event_id":"e1","state":"raised","level":"red","value":25.0,"threshold":20.0,"ts_ms":7}"#
        );
    }

    #[test]
    fn joined_rows_add_their_fields() {
        let with = |mut c: BTreeSet<String>, more: &[&str]| {
            c.extend(more.iter().map(|m| m.to_string()));
            c
        };
        assert_eq!(
            props::<WarningDetail>(),
            with(props::<Warning>(), &["events"])
        );
        assert_eq!(props::<TaskDetail>(), with(props::<Task>(), &["photos"]));
        assert_eq!(
            props::<HazardDetail>(),
            with(props::<Hazard>(), &["photos"])
        );
        assert_eq!(
            props::<DashboardWarning>(),
            with(
                props::<DashboardRow>(),
                &[
                    "reading", "unit", "now_ms", "calling", "ladder", "held", "stale", "members"
                ]
            )
        );
        assert_eq!(props::<ListedWindow>(), with(props::<Window>(), &["held"]));
    }
}

joined! {
    /// A maintenance window with the warnings it holds
    /// (`GET /api/v1/maintenance`).
    ListedWindow = Window + Held,
    "A maintenance window with the warnings whose calls it holds now"
}
