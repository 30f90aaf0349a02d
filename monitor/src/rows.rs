//! Schemas of the JSON rows the API reads straight from the database
//! ([`crate::db::row_json`] over a column list such as
//! [`crate::work::HAZARD_COLS`]): every column, nullable where the column
//! is, in the JSON type `row_json` gives it (integers for `BIGINT`, numbers
//! for `DOUBLE PRECISION`, strings for `TEXT`). The types only describe the
//! responses (hence `dead_code`); tests check each schema's properties
//! against the column list its handler selects, and `tests/api_sqlite.rs`
//! validates the rows the running API sends against the served schemas.

#![allow(dead_code)]

use utoipa::openapi::{ArrayBuilder, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// A unit type whose schema is `$row`'s plus a required list of `$item`
/// rows named `$field` (see [`with_list`]); `$item`'s schema comes along.
macro_rules! with_list_schema {
    ($(#[$doc:meta])* $name:ident = $row:ident + $field:literal: [$item:ident], $what:literal, $description:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                with_list($row::schema(), $field, $item::name().as_ref(), $what, $description)
            }
        }

        impl ToSchema for $name {
            fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
                out.push(($item::name().into(), $item::schema()));
            }
        }
    };
}

/// A warning (`GET /api/v1/warnings`): the columns of
/// [`crate::warnings::COLS`].
#[derive(Debug, ToSchema)]
pub struct Warning {
    /// Id.
    id: String,
    /// The alarm it tracks: `site/device/rule`.
    alarm_key: String,
    /// The venue of the site (none for an unregistered site).
    #[schema(required = true)]
    venue_id: Option<String>,
    /// The venue's region (none for an unregistered site).
    #[schema(required = true)]
    region_id: Option<String>,
    /// The gateway's site id.
    site: String,
    /// Device id.
    device: String,
    /// Device kind (`gas`, `electrical`, `water_pressure`, `crane`).
    kind: String,
    /// The rule that fired.
    rule: String,
    /// The level now (`blue`, `yellow`, `orange`, `red`).
    level: String,
    /// The highest level reached.
    max_level: String,
    /// `RAISED`, `NOTIFIED`, `ACKED`, `DISPOSING` or `RESOLVED`.
    state: String,
    /// 1 once the alarm was cleared at the source, else 0.
    clearable: i64,
    /// After confirmation: 1 a false alarm, 0 real; none before.
    #[schema(required = true)]
    false_alarm: Option<i64>,
    /// When it was raised (Unix ms).
    raised_ms: i64,
    /// When it was acknowledged (Unix ms).
    #[schema(required = true)]
    acked_ms: Option<i64>,
    /// Who acknowledged it (registry person id).
    #[schema(required = true)]
    acked_by: Option<String>,
    /// When it was resolved (Unix ms).
    #[schema(required = true)]
    resolved_ms: Option<i64>,
    /// The 叫应 ladder's step: 0 = the first calls, k = the chain's k-th
    /// step; -1 before any call.
    ladder_step: i64,
    /// When an acknowledgement is due before the next step is called (Unix
    /// ms); none when acknowledged, cleared or the chain is exhausted.
    #[schema(required = true)]
    ack_due_ms: Option<i64>,
    /// The latest value of the reading (none for warnings older than this
    /// column).
    #[schema(required = true)]
    value: Option<f64>,
    /// Its threshold.
    #[schema(required = true)]
    threshold: Option<f64>,
    /// How it was acknowledged: `api`, `web`, `link`, `sms`, `voice`.
    #[schema(required = true)]
    acked_via: Option<String>,
}

/// One alarm event of a warning: the columns of
/// [`crate::warnings::EVENT_COLS`].
#[derive(Debug, ToSchema)]
pub struct WarningEvent {
    /// The gateway's event id.
    event_id: String,
    /// `raised`, `escalated`, `downgraded` or `cleared`.
    state: String,
    /// The level (`blue`, `yellow`, `orange`, `red`).
    level: String,
    /// The measured value.
    value: f64,
    /// The threshold it crossed.
    threshold: f64,
    /// When, at the gateway (Unix ms).
    ts_ms: i64,
}

with_list_schema! {
    /// One warning with its alarm events (`GET /api/v1/warnings/{id}`): the
    /// columns of [`Warning`] and `events`.
    WarningDetail = Warning + "events": [WarningEvent],
    "Its alarm events, oldest first",
    "A warning with its alarm events"
}

/// A task (`GET /api/v1/tasks`): the columns of [`crate::work::TASK_COLS`].
#[derive(Debug, ToSchema)]
pub struct Task {
    /// Id.
    id: String,
    /// `inspection`, `disposal`, `rectification`, … (the template's kind).
    kind: String,
    /// Title.
    title: String,
    /// Venue.
    #[schema(required = true)]
    venue_id: Option<String>,
    /// Region.
    #[schema(required = true)]
    region_id: Option<String>,
    /// The warning a disposal task handles.
    #[schema(required = true)]
    warning_id: Option<String>,
    /// The warning's level, for a disposal task.
    #[schema(required = true)]
    level: Option<String>,
    /// The assigned person (registry id).
    #[schema(required = true)]
    assignee_id: Option<String>,
    /// `PLANNED`, `ASSIGNED`, `IN_PROGRESS`, `SUBMITTED`, `DONE`, `OVERDUE`, …
    state: String,
    /// Due (Unix ms).
    due_ms: i64,
    /// The evidence submitted (JSON text: checklist results, notes).
    #[schema(required = true)]
    evidence: Option<String>,
    /// Created (Unix ms).
    created_ms: i64,
    /// Done (Unix ms).
    #[schema(required = true)]
    done_ms: Option<i64>,
}

with_list_schema! {
    /// One task with its photos (`GET /api/v1/tasks/{id}`).
    TaskDetail = Task + "photos": [Evidence],
    "Its photo evidence, oldest first",
    "A task with its photos"
}

/// A hazard (`GET /api/v1/hazards`): the columns of
/// [`crate::work::HAZARD_COLS`].
#[derive(Debug, ToSchema)]
pub struct Hazard {
    /// Id.
    id: String,
    /// 挂牌督办: the tier that listed it (`county`, `city`).
    #[schema(required = true)]
    listed_level: Option<String>,
    /// 挂牌督办: who listed it (registry person id).
    #[schema(required = true)]
    listed_by: Option<String>,
    /// Venue.
    venue_id: String,
    /// The venue's region.
    #[schema(required = true)]
    region_id: Option<String>,
    /// Category.
    category: String,
    /// Title.
    title: String,
    /// Where it came from (`inspection`, `alarm`, `report`, …).
    source: String,
    /// The row it came from (a task or warning id).
    #[schema(required = true)]
    source_ref: Option<String>,
    /// `general` or `major`, once judged.
    #[schema(required = true)]
    severity: Option<String>,
    /// `DETECTED`, `JUDGED`, `FILED`, `RECTIFYING`, `INTERIM_CONTROL`,
    /// `VERIFYING`, `CLOSED`, `ARCHIVED`, `REOPENED`.
    state: String,
    /// The person responsible.
    #[schema(required = true)]
    owner_id: Option<String>,
    /// 四项清单: the problem.
    #[schema(required = true)]
    problem: Option<String>,
    /// 四项清单: the measures.
    #[schema(required = true)]
    measures: Option<String>,
    /// 四项清单: the standard.
    #[schema(required = true)]
    standard: Option<String>,
    /// 四项清单: who is responsible.
    #[schema(required = true)]
    responsibility: Option<String>,
    /// Funds (major hazards).
    #[schema(required = true)]
    funds: Option<String>,
    /// Plan (major hazards).
    #[schema(required = true)]
    plan: Option<String>,
    /// 验收: the accepting unit.
    #[schema(required = true)]
    acceptance_unit: Option<String>,
    /// 验收: the acceptance record.
    #[schema(required = true)]
    acceptance_record: Option<String>,
    /// 验收: the signer.
    #[schema(required = true)]
    signer: Option<String>,
    /// During interim control: who watches.
    #[schema(required = true)]
    interim_watcher: Option<String>,
    /// 1 when a penalty case was opened, else 0.
    penalty_case: i64,
    /// Due (Unix ms).
    #[schema(required = true)]
    due_ms: Option<i64>,
    /// Created (Unix ms).
    created_ms: i64,
    /// Closed (Unix ms).
    #[schema(required = true)]
    closed_ms: Option<i64>,
    /// How often it was reopened.
    reopened: i64,
}

with_list_schema! {
    /// One hazard with its photos (`GET /api/v1/hazards/{id}`).
    HazardDetail = Hazard + "photos": [Evidence],
    "Its photo evidence (验收记录 photos), oldest first",
    "A hazard with its photos"
}

/// A photo's record: the columns of [`crate::evidence::COLS`].
#[derive(Debug, ToSchema)]
pub struct Evidence {
    /// Id (download at `/api/v1/evidence/{id}`).
    id: String,
    /// `task` or `hazard`.
    subject: String,
    /// The task or hazard id.
    subject_id: String,
    /// SHA-256 of the stored file (hex).
    sha256: String,
    /// `image/jpeg`, `image/png` or `image/webp`.
    media_type: String,
    /// Size of the stored file.
    bytes: i64,
    /// The uploaded file's name.
    #[schema(required = true)]
    filename: Option<String>,
    /// Who uploaded it (registry person id).
    uploaded_by: String,
    /// When (Unix ms).
    created_ms: i64,
}

/// An audit row: the columns of [`crate::http::audit::AUDIT_COLS`].
#[derive(Debug, ToSchema)]
pub struct AuditRow {
    /// When (Unix ms).
    at_ms: i64,
    /// Who (a person id, a web user, `system`, …).
    actor: String,
    /// `warning`, `task`, `hazard`, a registry table, …
    entity: String,
    /// Its id.
    entity_id: String,
    /// The state before (none for a creation).
    #[schema(required = true)]
    from_state: Option<String>,
    /// The state after (or the action).
    to_state: String,
    /// Why.
    reason: String,
}

/// A notification delivery: the columns of [`crate::notify::DELIVERY_COLS`].
#[derive(Debug, ToSchema)]
pub struct Delivery {
    /// Id.
    id: String,
    /// `warning`, `task`, `hazard`, `report`, …
    subject: String,
    /// Its id.
    subject_id: String,
    /// The person notified.
    person_id: String,
    /// `email`, `webhook`, `voice`, …
    channel: String,
    /// The address.
    target: String,
    /// Why (`notify`, `escalate`, `remind`, …).
    purpose: String,
    /// Title.
    title: String,
    /// `QUEUED`, `SENT`, `DELIVERED`, `UNDELIVERED` (by receipt) or
    /// `FAILED`.
    state: String,
    /// Send attempts so far.
    attempts: i64,
    /// The last failure.
    #[schema(required = true)]
    last_error: Option<String>,
    /// Queued (Unix ms).
    created_ms: i64,
    /// Sent (Unix ms).
    #[schema(required = true)]
    sent_ms: Option<i64>,
    /// Queue order, higher first (red calls 45, red information 40, …,
    /// reminders 0).
    priority: i64,
    /// The ladder step of a warning call.
    #[schema(required = true)]
    step: Option<i64>,
    /// The provider's message id (BizId, SerialNo, CallId).
    #[schema(required = true)]
    provider_id: Option<String>,
    /// The provider's receipt (delivery report, call result).
    #[schema(required = true)]
    receipt: Option<String>,
    /// When it came (Unix ms).
    #[schema(required = true)]
    receipt_ms: Option<i64>,
}

/// A 重点风控 proposal: the columns of [`crate::http::warnings::KEY_RISK_COLS`].
#[derive(Debug, ToSchema)]
pub struct KeyRiskProposal {
    /// Venue.
    venue_id: String,
    /// Proposed (Unix ms).
    proposed_ms: i64,
    /// The alarms that led to it.
    alarms: i64,
    /// `PROPOSED`, `ACCEPTED` or `REJECTED`.
    state: String,
}

/// A sanction proposal: the columns of [`crate::http::work::SANCTION_COLS`].
#[derive(Debug, ToSchema)]
pub struct SanctionProposal {
    /// Id.
    id: String,
    /// `task` or `hazard`.
    subject: String,
    /// Its id.
    subject_id: String,
    /// `约谈`, `通报`, …
    proposal: String,
    /// `PROPOSED`, `ACCEPTED` or `REJECTED`.
    state: String,
    /// Created (Unix ms).
    created_ms: i64,
}

/// A stored report snapshot (without the report): the columns of
/// [`crate::snapshots::COLS`].
#[derive(Debug, ToSchema)]
pub struct SnapshotRow {
    /// Id (`/api/v1/report-snapshots/{id}`).
    id: String,
    /// The period (`daily` … `yearly`).
    period: String,
    /// The period's label (e.g. `2026-05`).
    label: String,
    /// Region.
    region_id: String,
    /// Generated (Unix ms).
    generated_ms: i64,
}

/// A venue as the registry lists it: the columns of
/// [`crate::registry::VENUE_COLS`].
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct VenueRow {
    /// Id.
    id: String,
    /// Name.
    name: String,
    /// Sector.
    sector: String,
    /// Address.
    address: String,
    /// Region.
    region_id: String,
    /// The gateway's site id, when it differs from `id`.
    #[schema(required = true)]
    site: Option<String>,
    /// 1 while the venue is under 重点风控, else 0.
    key_risk: i64,
    /// Its grid cell.
    #[schema(required = true)]
    grid_id: Option<String>,
}

/// A duty row as the registry lists it: the columns of
/// [`crate::registry::DUTY_COLS`].
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DutyRow {
    /// Id.
    id: String,
    /// The person on duty.
    person_id: String,
    /// The role covered.
    role: String,
    /// Region.
    region_id: String,
    /// Order among those on duty (lower first).
    rank: i64,
    /// A recurring shift's weekdays (`12345`; Monday = 1); none = every day.
    #[schema(required = true)]
    days: Option<String>,
    /// Its start, minutes after 00:00 Beijing time; none = the whole day.
    #[schema(required = true)]
    start_min: Option<i64>,
    /// Its end (not after the start: overnight).
    #[schema(required = true)]
    end_min: Option<i64>,
    /// `work`, `skip` or `only` (public holidays); none = work.
    #[schema(required = true)]
    holidays: Option<String>,
}

/// A grid as the registry lists it (officers in `grid-people`).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct GridRow {
    /// Id.
    id: String,
    /// Name.
    name: String,
    /// Region.
    region_id: String,
}

/// A venue's person as the registry lists it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct VenuePersonRow {
    /// Id (`venue/person/role`).
    id: String,
    /// Venue.
    venue_id: String,
    /// Person.
    person_id: String,
    /// `principal` or `safety_officer`.
    role: String,
    /// Order.
    rank: i64,
}

/// A grid officer.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct GridPersonRow {
    /// Grid.
    grid_id: String,
    /// Person.
    person_id: String,
    /// Order (0 first).
    rank: i64,
}

/// A dated override of the rota.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct OverrideRow {
    /// Id.
    id: String,
    /// `YYYY-MM-DD`.
    day: String,
    /// Region.
    region_id: String,
    /// Role.
    role: String,
    /// Person.
    person_id: String,
    /// Order.
    rank: i64,
    /// Start, minutes after 00:00; none = the whole day.
    #[schema(required = true)]
    start_min: Option<i64>,
    /// End.
    #[schema(required = true)]
    end_min: Option<i64>,
}

/// A public holiday.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct HolidayRow {
    /// `YYYY-MM-DD`.
    day: String,
    /// Name.
    name: String,
}

/// A row of `GET /api/v1/registry/{table}`: the type is the table's.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
pub enum RegistryListRow {
    /// `regions`: [`crate::registry::REGION_COLS`].
    Region(crate::registry::Region),
    /// `venues`.
    Venue(VenueRow),
    /// `devices`: [`crate::registry::DEVICE_COLS`].
    Device(crate::registry::Device),
    /// `people`: [`crate::registry::PERSON_COLS`].
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

/// A warning on the dashboard: the columns of
/// [`crate::web::data::WARNING_COLS`].
#[derive(Debug, ToSchema)]
pub struct DashboardWarning {
    /// Id.
    id: String,
    /// Region (none for an unregistered site).
    #[schema(required = true)]
    region_id: Option<String>,
    /// Venue (none for an unregistered site).
    #[schema(required = true)]
    venue_id: Option<String>,
    /// The venue's name.
    #[schema(required = true)]
    venue_name: Option<String>,
    /// The gateway's site id.
    site: String,
    /// Device id.
    device: String,
    /// Device kind.
    kind: String,
    /// The rule that fired.
    rule: String,
    /// The level now.
    level: String,
    /// The highest level reached.
    max_level: String,
    /// State.
    state: String,
    /// 1 once cleared at the source, else 0.
    clearable: i64,
    /// Raised (Unix ms).
    raised_ms: i64,
    /// Who acknowledged it.
    #[schema(required = true)]
    acked_by: Option<String>,
    /// The latest value.
    #[schema(required = true)]
    value: Option<f64>,
    /// Its threshold.
    #[schema(required = true)]
    threshold: Option<f64>,
    /// When the acknowledgement is due (Unix ms); none when nothing is due.
    #[schema(required = true)]
    ack_due_ms: Option<i64>,
    /// The 叫应 ladder's step.
    ladder_step: i64,
    /// The device's name.
    #[schema(required = true)]
    device_name: Option<String>,
    /// Where the device is.
    #[schema(required = true)]
    location: Option<String>,
    /// The name of who acknowledged it.
    #[schema(required = true)]
    acked_by_name: Option<String>,
    /// The reading's name in the user's language (`可燃气体浓度`).
    reading: String,
    /// Its unit (`%LEL`; empty when none).
    unit: String,
    /// The server's now (Unix ms): the countdown's reference.
    now_ms: i64,
    /// Who is being called now (names), while an answer is due.
    calling: Vec<String>,
    /// The 叫应 ladder, oldest first.
    ladder: Vec<crate::warnings::Rung>,
}

/// Open warnings by level (zero-filled).
#[derive(Debug, ToSchema)]
pub struct LevelCounts {
    /// 红.
    red: i64,
    /// 橙.
    orange: i64,
    /// 黄.
    yellow: i64,
    /// 蓝.
    blue: i64,
}

/// A device on the dashboard.
#[derive(Debug, ToSchema)]
pub struct DeviceState {
    /// Id.
    id: String,
    /// Kind.
    kind: String,
    /// False while the monitor believes it offline.
    online: bool,
}

/// `schema` (an object) with a required array property `name` of `$ref`
/// `item` added, and `description`.
fn with_list(
    schema: RefOr<Schema>,
    name: &str,
    item: &str,
    what: &str,
    description: &str,
) -> RefOr<Schema> {
    match schema {
        RefOr::T(Schema::Object(mut o)) => {
            let items = RefOr::Ref(utoipa::openapi::Ref::from_schema_name(item));
            let mut list = ArrayBuilder::new().items(items).build();
            list.description = Some(what.into());
            o.properties.insert(name.into(), list.into());
            o.required.push(name.into());
            o.description = Some(description.into());
            RefOr::T(Schema::Object(o))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use super::*;

    /// The property names of `T`'s schema.
    fn props<T: PartialSchema>() -> BTreeSet<String> {
        let v = serde_json::to_value(T::schema()).unwrap();
        v["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("not an object schema: {v}"))
            .keys()
            .cloned()
            .collect()
    }

    /// A column list as a set (and no column twice).
    fn cols(c: &[&str]) -> BTreeSet<String> {
        let set: BTreeSet<String> = c.iter().map(|s| s.to_string()).collect();
        assert_eq!(set.len(), c.len(), "a column twice in {c:?}");
        set
    }

    /// Every property is required (the rows always carry every column,
    /// null or not).
    fn all_required<T: PartialSchema>() {
        let v = serde_json::to_value(T::schema()).unwrap();
        let req: BTreeSet<String> = v["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(req, props::<T>(), "{v}");
    }

    #[test]
    fn warning_is_its_columns() {
        assert_eq!(props::<Warning>(), cols(crate::warnings::COLS));
        assert_eq!(props::<WarningEvent>(), cols(crate::warnings::EVENT_COLS));
        let mut detail = cols(crate::warnings::COLS);
        detail.insert("events".into());
        assert_eq!(props::<WarningDetail>(), detail);
        all_required::<Warning>();
        all_required::<WarningDetail>();
    }

    #[test]
    fn task_is_its_columns() {
        assert_eq!(props::<Task>(), cols(crate::work::TASK_COLS));
        let mut detail = cols(crate::work::TASK_COLS);
        detail.insert("photos".into());
        assert_eq!(props::<TaskDetail>(), detail);
        all_required::<TaskDetail>();
    }

    #[test]
    fn hazard_is_its_columns() {
        assert_eq!(props::<Hazard>(), cols(crate::work::HAZARD_COLS));
        let mut detail = cols(crate::work::HAZARD_COLS);
        detail.insert("photos".into());
        assert_eq!(props::<HazardDetail>(), detail);
        all_required::<HazardDetail>();
    }

    #[test]
    fn evidence_is_its_columns() {
        assert_eq!(props::<Evidence>(), cols(crate::evidence::COLS));
        all_required::<Evidence>();
    }

    #[test]
    fn audit_is_its_columns() {
        assert_eq!(props::<AuditRow>(), cols(crate::http::audit::AUDIT_COLS));
        all_required::<AuditRow>();
    }

    #[test]
    fn delivery_is_its_columns() {
        assert_eq!(props::<Delivery>(), cols(crate::notify::DELIVERY_COLS));
        all_required::<Delivery>();
    }

    #[test]
    fn proposals_and_snapshots_are_their_columns() {
        assert_eq!(
            props::<KeyRiskProposal>(),
            cols(crate::http::warnings::KEY_RISK_COLS)
        );
        assert_eq!(
            props::<SanctionProposal>(),
            cols(crate::http::work::SANCTION_COLS)
        );
        assert_eq!(props::<SnapshotRow>(), cols(crate::snapshots::COLS));
        all_required::<KeyRiskProposal>();
        all_required::<SanctionProposal>();
        all_required::<SnapshotRow>();
    }

    #[test]
    fn registry_rows_are_their_columns() {
        use crate::registry as r;
        assert_eq!(props::<r::Region>(), cols(r::REGION_COLS));
        assert_eq!(props::<VenueRow>(), cols(r::VENUE_COLS));
        assert_eq!(props::<r::Device>(), cols(r::DEVICE_COLS));
        assert_eq!(props::<r::Person>(), cols(r::PERSON_COLS));
        assert_eq!(props::<DutyRow>(), cols(r::DUTY_COLS));
        assert_eq!(props::<GridRow>(), cols(r::GRID_COLS));
        assert_eq!(props::<VenuePersonRow>(), cols(r::VENUE_PERSON_COLS));
        assert_eq!(props::<GridPersonRow>(), cols(r::GRID_PERSON_COLS));
        assert_eq!(props::<OverrideRow>(), cols(r::OVERRIDE_COLS));
        assert_eq!(props::<HolidayRow>(), cols(r::HOLIDAY_COLS));
        all_required::<VenueRow>();
        all_required::<DutyRow>();
        all_required::<OverrideRow>();
    }

    #[test]
    fn dashboard_warning_is_its_columns() {
        let mut want = cols(crate::web::data::WARNING_COLS);
        want.extend(cols(crate::web::data::WARNING_EXTRA));
        assert_eq!(props::<DashboardWarning>(), want);
        all_required::<DashboardWarning>();
        let levels: BTreeSet<String> = crate::web::data::counts_by_level(&[])
            .keys()
            .map(|k| k.to_string())
            .collect();
        assert_eq!(props::<LevelCounts>(), levels);
    }
}
