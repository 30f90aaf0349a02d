//! The registry: regions, venues, devices, people, the rota.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::caller::{self, Caller};
use super::{Created, body, parse};
use crate::error::{Error, Result};
use crate::{App, registry};

#[utoipa::path(get, path = "/api/v1/registry/{table}", tag = "registry", operation_id = "registry_list",
    summary = "Registry rows of one table",
    security(("api_token" = []), ("session" = [])),
    params(("table" = crate::openapi::RegistryTable, Path, description = "The table")),
    responses(
        (status = 200, description = "The rows; the type is the table's (venues carry `key_risk`, not their coordinates)", body = [crate::rows::RegistryListRow]),
        crate::openapi::LookupErrors,
    ))]
pub(super) async fn registry_list(
    State(app): State<App>,
    caller: Caller,
    Path(table): Path<String>,
) -> Result<axum::Json<Vec<crate::rows::RegistryListRow>>> {
    caller.require(caller::may_read_records, "read the registry")?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(registry::list(&mut c, &table).await?))
}

#[utoipa::path(put, path = "/api/v1/registry/{table}", tag = "registry", operation_id = "registry_put",
    summary = "Insert or replace a registry row (audited)",
    description = "The body is a row of `table`: a Region, Venue, Device, Person, Duty, Grid (with its officers), VenuePerson, DutyOverride or Holiday. `grid-people` are written with their grid.",
    security(("api_token" = []), ("session" = [])),
    params(("table" = crate::openapi::RegistryTable, Path, description = "The table")),
    request_body(content = crate::openapi::RegistryRow, content_type = "application/json"),
    responses(
        (status = 200, description = "Written", body = Created),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn registry_put(
    State(app): State<App>,
    caller: Caller,
    Path(table): Path<String>,
    b: std::result::Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, axum::Json<Created>)> {
    caller.require(caller::may_write_registry, "write the registry")?;
    let b = body(b, app.cfg.server.max_body_bytes)?;
    let mut tx = app.db.begin().await?;
    let id = match table.as_str() {
        "regions" => {
            let r: registry::Region = parse(&b)?;
            registry::put_region(&mut tx, &r).await?;
            r.id
        }
        "venues" => {
            let v: registry::Venue = parse(&b)?;
            registry::put_venue(&mut tx, &v).await?;
            v.id
        }
        "devices" => {
            let d: registry::Device = parse(&b)?;
            registry::put_device(&mut tx, &d).await?;
            d.id
        }
        "people" => {
            let p: registry::Person = parse(&b)?;
            registry::put_person(&mut tx, &p).await?;
            p.id
        }
        "duty" => {
            let d: registry::Duty = parse(&b)?;
            registry::put_duty(&mut tx, &d).await?
        }
        "grids" => {
            let g: registry::Grid = parse(&b)?;
            registry::put_grid(&mut tx, &g).await?;
            g.id
        }
        "venue-people" => {
            let l: registry::VenuePerson = parse(&b)?;
            registry::put_venue_person(&mut tx, &l).await?
        }
        "duty-overrides" => {
            let o: registry::DutyOverride = parse(&b)?;
            registry::put_duty_override(&mut tx, &o).await?
        }
        "holidays" => {
            let h: registry::Holiday = parse(&b)?;
            registry::put_holiday(&mut tx, &h).await?;
            h.date
        }
        _ => {
            return Err(Error::NotFound {
                what: "registry table",
                id: table,
            });
        }
    };
    crate::db::audit(
        &mut tx,
        app.now_ms(),
        &caller.audit_name(),
        "registry",
        &format!("{table}/{id}"),
        None,
        "PUT",
        "registry row written",
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::OK, axum::Json(Created { id })))
}

#[utoipa::path(delete, path = "/api/v1/registry/{table}/{id}", tag = "registry", operation_id = "registry_delete",
    summary = "Delete a registry row (audited)",
    security(("api_token" = []), ("session" = [])),
    params(
        ("table" = crate::openapi::RegistryTable, Path, description = "The table"),
        ("id" = String, Path, description = "Row id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        crate::openapi::WriteErrors,
    ))]
pub(super) async fn registry_delete(
    State(app): State<App>,
    caller: Caller,
    Path((table, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    caller.require(caller::may_write_registry, "write the registry")?;
    let mut tx = app.db.begin().await?;
    registry::delete(&mut tx, &table, &id).await?;
    crate::db::audit(
        &mut tx,
        app.now_ms(),
        &caller.audit_name(),
        "registry",
        &format!("{table}/{id}"),
        None,
        "DELETED",
        "registry row deleted",
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
