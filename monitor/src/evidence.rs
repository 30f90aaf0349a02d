//! Photo evidence on tasks and hazards: uploaded as multipart, accepted only
//! when the first bytes say JPEG, PNG or WebP (the client's content type is
//! not trusted), stored once per content under `evidence.dir/<sha256>`
//! (written to a temporary name, synced, then renamed, so a file under its
//! final name is always complete), with a metadata row and an audit row in
//! one transaction.
//!
//! Before storing, the photo's metadata (EXIF with GPS position and device,
//! XMP, text chunks) is stripped without re-encoding, keeping only the
//! orientation ([`crate::photo`]); the stored bytes are what the SHA-256
//! names. A file that has the right first bytes but is not a readable
//! JPEG/PNG/WebP container is refused (422).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Row};

use crate::App;
use crate::db::{self, Columns};
use crate::error::{Error, Result};
use crate::http::caller::Caller;
use crate::rows::Evidence;

/// What a photo may be: its media type from its magic bytes.
pub fn sniff(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// What evidence can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A task.
    Task,
    /// A hazard.
    Hazard,
}

impl Subject {
    /// The name in the `evidence` table and the audit.
    pub fn name(self) -> &'static str {
        match self {
            Self::Task => "task",
            Self::Hazard => "hazard",
        }
    }

    /// Its table.
    pub fn table(self) -> &'static str {
        match self {
            Self::Task => "tasks",
            Self::Hazard => "hazards",
        }
    }

    /// From [`Self::name`] as stored in the `evidence` table.
    fn of_name(name: &str) -> Self {
        if name == "task" {
            Self::Task
        } else {
            Self::Hazard
        }
    }

    /// Its row (a [`crate::rows::Task`] or [`crate::rows::Hazard`]), 404
    /// naming it when there is none.
    pub async fn row<T: Columns>(self, c: &mut AnyConnection, id: &str) -> Result<T> {
        crate::work::get(c, self.table(), self.name(), id).await
    }
}

fn path_of(dir: &str, sha: &str) -> PathBuf {
    Path::new(dir).join(sha)
}

/// Writes `data` as `dir/<sha>` unless it is there already.
fn write_file(dir: &str, sha: &str, data: &[u8]) -> std::io::Result<()> {
    let dest = path_of(dir, sha);
    if dest.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let tmp = Path::new(dir).join(format!(".upload-{}", db::new_id()));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dest)?;
        // The rename is durable once the directory is synced.
        std::fs::File::open(dir)?.sync_all()
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Stores one photo for `subject` `id`, uploaded by person `actor`.
/// Refuses (415) anything that is not JPEG, PNG or WebP and (413) anything
/// over `evidence.max_bytes`. Returns the metadata row.
pub async fn add(
    app: &App,
    subject: Subject,
    id: &str,
    actor: &str,
    filename: Option<&str>,
    data: &[u8],
) -> Result<Evidence> {
    let m = &app.metrics;
    if data.len() > app.cfg.evidence.max_bytes {
        m.evidence_rejected.with_label_values(&["too_large"]).inc();
        return Err(Error::TooLarge(app.cfg.evidence.max_bytes));
    }
    let Some(media) = sniff(data) else {
        m.evidence_rejected.with_label_values(&["type"]).inc();
        return Err(Error::UnsupportedMedia(
            "file: only JPEG, PNG or WebP photos are accepted (recognised by their content)".into(),
        ));
    };
    let stripped = crate::photo::strip(media, data).map_err(|e| {
        m.evidence_rejected.with_label_values(&["malformed"]).inc();
        Error::Invalid(e.to_string())
    })?;
    let data = stripped.as_slice();
    let now = app.now_ms();
    let mut tx = app.db.begin().await?;
    exists(&mut tx, subject, id).await?;
    let sha = hex::encode(Sha256::digest(data));
    let dir = app.cfg.evidence.dir.clone();
    let bytes = data.to_vec();
    let s2 = sha.clone();
    tokio::task::spawn_blocking(move || write_file(&dir, &s2, &bytes))
        .await
        .map_err(|e| Error::Unavailable(format!("evidence: writer stopped: {e}")))??;
    let eid = db::new_id();
    let filename: Option<String> =
        filename.map(|f| f.chars().filter(|c| !c.is_control()).take(200).collect());
    sqlx::query(
        "INSERT INTO evidence (id, subject, subject_id, sha256, media_type, bytes, filename, \
         uploaded_by, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&eid)
    .bind(subject.name())
    .bind(id)
    .bind(&sha)
    .bind(media)
    .bind(i64::try_from(data.len()).unwrap_or(i64::MAX))
    .bind(filename.clone())
    .bind(actor)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    db::audit(
        &mut tx,
        now,
        &format!("person:{actor}"),
        &format!("{}_evidence", subject.name()),
        id,
        None,
        "PHOTO_ADDED",
        &format!("photo {eid} ({media}, {} bytes, sha256 {sha})", data.len()),
    )
    .await?;
    tx.commit().await?;
    Ok(Evidence {
        id: eid,
        subject: subject.name().into(),
        subject_id: id.into(),
        sha256: sha,
        media_type: media.into(),
        bytes: i64::try_from(data.len()).unwrap_or(i64::MAX),
        filename,
        uploaded_by: actor.into(),
        created_ms: now,
    })
}

async fn exists(c: &mut AnyConnection, subject: Subject, id: &str) -> Result<()> {
    let sql = format!("SELECT id FROM {} WHERE id = $1", subject.table());
    match sqlx::query(&sql).bind(id).fetch_optional(&mut *c).await? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound {
            what: subject.name(),
            id: id.into(),
        }),
    }
}

/// The photos of `subject` `id`, oldest first.
pub async fn list(c: &mut AnyConnection, subject: Subject, id: &str) -> Result<Vec<Evidence>> {
    let sql = format!(
        "SELECT {} FROM evidence WHERE subject = $1 AND subject_id = $2 ORDER BY created_ms, id",
        Evidence::select()
    );
    Ok(sqlx::query_as(&sql)
        .bind(subject.name())
        .bind(id)
        .fetch_all(&mut *c)
        .await?)
}

/// One photo: its media type and bytes.
pub async fn open(app: &App, id: &str) -> Result<(String, Vec<u8>)> {
    let row = sqlx::query("SELECT sha256, media_type FROM evidence WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.db)
        .await?
        .ok_or(Error::NotFound {
            what: "evidence",
            id: id.into(),
        })?;
    let sha: String = row.try_get("sha256")?;
    let media: String = row.try_get("media_type")?;
    let data = tokio::fs::read(path_of(&app.cfg.evidence.dir, &sha)).await?;
    Ok((media, data))
}

// HTTP handlers (routed in `api`).

/// The body limit of an upload: the photo plus room for the form fields.
pub fn upload_limit(app: &App) -> usize {
    app.cfg.evidence.max_bytes.saturating_add(64 * 1024)
}

/// The region of the task or hazard photo `id` belongs to (404 for no such
/// photo): whoever may see its subject may see the photo.
pub async fn region(c: &mut AnyConnection, id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT subject, subject_id FROM evidence WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(Error::NotFound {
            what: "evidence",
            id: id.into(),
        })?;
    let subject = Subject::of_name(&row.try_get::<String, _>("subject")?);
    let of: String = row.try_get("subject_id")?;
    Ok(sqlx::query_scalar::<_, Option<String>>(&format!(
        "SELECT region_id FROM {} WHERE id = $1",
        subject.table()
    ))
    .bind(of)
    .fetch_optional(&mut *c)
    .await?
    .flatten())
}

/// 403 unless a person caller sees the task or hazard (404 if none).
async fn subject_visible(app: &App, caller: &Caller, subject: Subject, id: &str) -> Result<()> {
    if !caller.scoped() {
        return Ok(());
    }
    let mut c = app.db.acquire().await?;
    let region = match subject {
        Subject::Task => crate::work::task(&mut c, id).await?.region_id,
        Subject::Hazard => crate::work::hazard(&mut c, id).await?.region_id,
    };
    caller.in_scope(&mut c, region.as_deref()).await
}

type Upload =
    std::result::Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>;

/// Reads `actor` (the person uploading; see [`Caller::acts_as`]) and
/// `file` from the form.
async fn read_upload(app: &App, mp: Upload) -> Result<(Option<String>, Option<String>, Bytes)> {
    let mut mp = mp.map_err(|e| {
        Error::BadRequest(format!(
            "send multipart/form-data with fields actor and file: {e}"
        ))
    })?;
    let (mut actor, mut file) = (None, None);
    let part = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Error::TooLarge(app.cfg.evidence.max_bytes)
        } else {
            Error::BadRequest(format!("multipart: {e}"))
        }
    };
    while let Some(f) = mp.next_field().await.map_err(part)? {
        match f.name() {
            Some("actor") => actor = Some(f.text().await.map_err(part)?),
            Some("file") => {
                let name = f.file_name().map(str::to_string);
                file = Some((name, f.bytes().await.map_err(part)?));
            }
            _ => {}
        }
    }
    let actor = actor.filter(|a| !a.trim().is_empty());
    let (name, data) = file.ok_or_else(|| Error::BadRequest("file: attach the photo".into()))?;
    Ok((actor, name, data))
}

async fn add_evidence(
    app: &App,
    caller: &Caller,
    subject: Subject,
    id: &str,
    mp: Upload,
) -> Result<(StatusCode, axum::Json<Evidence>)> {
    caller.require(
        |r| r != "admin",
        "upload evidence (the admin takes no part in the workflow)",
    )?;
    subject_visible(app, caller, subject, id).await?;
    let (actor, name, data) = read_upload(app, mp).await.inspect_err(|e| {
        let reason = match e {
            Error::TooLarge(_) => "too_large",
            _ => "bad_request",
        };
        app.metrics
            .evidence_rejected
            .with_label_values(&[reason])
            .inc();
    })?;
    let actor = caller.acts_as("actor", actor.as_deref())?;
    // The uploader is a person of the registry, whoever names them (found
    // by the API fuzzer: an operator token could store any text here).
    crate::registry::check_person(&mut *app.db.acquire().await?, "actor", &actor)
        .await
        .inspect_err(|_| {
            app.metrics
                .evidence_rejected
                .with_label_values(&["bad_request"])
                .inc();
        })?;
    let v = add(app, subject, id, &actor, name.as_deref(), &data).await?;
    Ok((StatusCode::CREATED, axum::Json(v)))
}

/// `POST /api/v1/tasks/{id}/evidence`.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/evidence", tag = "tasks", operation_id = "add_task_evidence",
    summary = "Upload a photo to one task (audited)",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Task id")),
    request_body(content = crate::openapi::EvidenceUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored: the photo's record", body = crate::rows::Evidence),
        (status = 415, description = "Not JPEG, PNG or WebP (by content)", body = crate::error::Problem, content_type = "application/problem+json"),
        crate::openapi::WriteErrors,
    ))]
pub async fn add_task(
    State(app): State<App>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
    mp: Upload,
) -> Result<(StatusCode, axum::Json<Evidence>)> {
    add_evidence(&app, &caller, Subject::Task, &id, mp).await
}

/// `POST /api/v1/hazards/{id}/evidence`.
#[utoipa::path(post, path = "/api/v1/hazards/{id}/evidence", tag = "hazards", operation_id = "add_hazard_evidence",
    summary = "Upload a photo to one hazard (audited)",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Hazard id")),
    request_body(content = crate::openapi::EvidenceUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored: the photo's record", body = crate::rows::Evidence),
        (status = 415, description = "Not JPEG, PNG or WebP (by content)", body = crate::error::Problem, content_type = "application/problem+json"),
        crate::openapi::WriteErrors,
    ))]
pub async fn add_hazard(
    State(app): State<App>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
    mp: Upload,
) -> Result<(StatusCode, axum::Json<Evidence>)> {
    add_evidence(&app, &caller, Subject::Hazard, &id, mp).await
}

/// `GET /api/v1/tasks/{id}/evidence`.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/evidence", tag = "tasks", operation_id = "list_task_evidence",
    summary = "Photos of one task",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Task id")),
    responses(
        (status = 200, description = "Evidence rows, oldest first", body = [crate::rows::Evidence]),
        crate::openapi::LookupErrors,
    ))]
pub async fn list_task(
    State(app): State<App>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<axum::Json<Vec<Evidence>>> {
    subject_visible(&app, &caller, Subject::Task, &id).await?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(list(&mut c, Subject::Task, &id).await?))
}

/// `GET /api/v1/hazards/{id}/evidence`.
#[utoipa::path(get, path = "/api/v1/hazards/{id}/evidence", tag = "hazards", operation_id = "list_hazard_evidence",
    summary = "Photos of one hazard",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Hazard id")),
    responses(
        (status = 200, description = "Evidence rows, oldest first", body = [crate::rows::Evidence]),
        crate::openapi::LookupErrors,
    ))]
pub async fn list_hazard(
    State(app): State<App>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<axum::Json<Vec<Evidence>>> {
    subject_visible(&app, &caller, Subject::Hazard, &id).await?;
    let mut c = app.db.acquire().await?;
    Ok(axum::Json(list(&mut c, Subject::Hazard, &id).await?))
}

/// `GET /api/v1/evidence/{id}`: the photo, with its media type.
#[utoipa::path(get, path = "/api/v1/evidence/{id}", tag = "tasks", operation_id = "get_evidence",
    summary = "One photo, with its media type",
    security(("api_token" = []), ("session" = [])),
    params(("id" = String, Path, description = "Evidence id")),
    responses(
        (status = 200, description = "The photo", content(
            (crate::openapi::Binary = "image/jpeg"),
            (crate::openapi::Binary = "image/png"),
            (crate::openapi::Binary = "image/webp"),
        )),
        crate::openapi::LookupErrors,
    ))]
pub async fn download(
    State(app): State<App>,
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<Response> {
    if caller.scoped() {
        let mut c = app.db.acquire().await?;
        let r = region(&mut c, &id).await?;
        caller.in_scope(&mut c, r.as_deref()).await?;
    }
    let (media, data) = open(&app, &id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, media),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        data,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content_only() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff(b"%PDF-1.7"), None);
        assert_eq!(sniff(b""), None);
    }
}
