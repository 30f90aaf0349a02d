//! Reports as files: XLSX (`rust_xlsxwriter`, in process) and PDF (the
//! report's HTML printed by headless Chromium, so the PDF looks like the
//! page and Chinese text uses the system's CJK fonts, e.g. Debian's
//! `fonts-noto-cjk`).

use std::path::PathBuf;
use std::time::Duration;

use rust_xlsxwriter::{Format, Workbook};

use crate::config::ReportsConfig;
use crate::error::{Error, Result};
use crate::reports::Monthly;

/// The MIME type of an XLSX workbook.
pub const XLSX_MIME: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// One sheet, `report`: a title row, then `indicator | value`, one row per
/// [`Monthly::rows`] entry (the same rows as CSV and HTML).
pub fn xlsx(m: &Monthly) -> Result<Vec<u8>> {
    let fail = |e: rust_xlsxwriter::XlsxError| Error::Invalid(format!("xlsx: {e}"));
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("report").map_err(fail)?;
    let bold = Format::new().set_bold();
    sheet
        .write_string_with_format(
            0,
            0,
            {
                let (zh, en) = crate::reports::title_of(&m.period);
                format!("{zh} {en}: {} {}", m.region_id, m.month)
            },
            &bold,
        )
        .map_err(fail)?;
    sheet
        .write_string_with_format(2, 0, "indicator", &bold)
        .map_err(fail)?;
    sheet
        .write_string_with_format(2, 1, "value", &bold)
        .map_err(fail)?;
    for (i, (k, v)) in m.rows().iter().enumerate() {
        let row = u32::try_from(i + 3).map_err(|_| Error::Invalid("xlsx: too many rows".into()))?;
        sheet.write_string(row, 0, k).map_err(fail)?;
        // Plain counts as numbers (sortable, summable); the rest as shown.
        match v.parse::<i64>() {
            Ok(n) => sheet.write_number(row, 1, n as f64),
            Err(_) => sheet.write_string(row, 1, v),
        }
        .map_err(fail)?;
    }
    sheet.set_column_width(0, 44).map_err(fail)?;
    sheet.set_column_width(1, 24).map_err(fail)?;
    book.save_to_buffer().map_err(fail)
}

/// A scratch directory removed on drop (the HTML in, the PDF out and
/// Chromium's profile, so concurrent prints never share a profile lock).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prints `html` to PDF with `reports.chromium`. A missing binary or a
/// failed print is 503 problem+json naming the key to fix.
pub async fn pdf(cfg: &ReportsConfig, html: &str) -> Result<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("anquan-report-{}", crate::db::new_id()));
    std::fs::create_dir_all(&dir)?;
    let scratch = Scratch(dir);
    let page = scratch.0.join("report.html");
    let out = scratch.0.join("report.pdf");
    std::fs::write(&page, html)?;
    let mut cmd = tokio::process::Command::new(&cfg.chromium);
    cmd.arg("--headless=new")
        .arg("--no-sandbox")
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .arg("--no-first-run")
        .arg("--no-pdf-header-footer")
        .arg(format!(
            "--user-data-dir={}",
            scratch.0.join("profile").display()
        ))
        .arg(format!("--print-to-pdf={}", out.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| {
        Error::Unavailable(format!(
            "reports.chromium: cannot run {:?} ({e}); install Chromium (Debian: chromium, fonts-noto-cjk; see scripts/install-deps) or set reports.chromium",
            cfg.chromium
        ))
    })?;
    let done = tokio::time::timeout(
        Duration::from_millis(cfg.pdf_timeout_ms),
        child.wait_with_output(),
    )
    .await
    .map_err(|_| {
        Error::Unavailable(format!(
            "reports.chromium: no PDF within reports.pdf_timeout_ms = {}",
            cfg.pdf_timeout_ms
        ))
    })??;
    let pdf = std::fs::read(&out).unwrap_or_default();
    if !done.status.success() || !pdf.starts_with(b"%PDF-") {
        let err = String::from_utf8_lossy(&done.stderr);
        let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        return Err(Error::Unavailable(format!(
            "reports.chromium: printing failed ({}): {tail}",
            done.status
        )));
    }
    Ok(pdf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xlsx_is_a_zip_workbook() {
        let m = Monthly {
            region_id: "city".into(),
            period: "monthly".into(),
            month: "2026-11".into(),
            ..Monthly::default()
        };
        let b = xlsx(&m).unwrap_or_default();
        assert!(b.starts_with(b"PK\x03\x04"), "not a zip");
    }

    #[tokio::test]
    async fn a_missing_chromium_is_unavailable_and_says_which_key() {
        let cfg = ReportsConfig {
            chromium: "/nonexistent/chromium".into(),
            ..ReportsConfig::default()
        };
        match pdf(&cfg, "<p>x</p>").await {
            Err(Error::Unavailable(m)) => assert!(m.contains("reports.chromium"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
