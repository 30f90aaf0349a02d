-- Reports generated on schedule (报告生成): one frozen snapshot per period,
-- label and region, written once (a second replica's insert conflicts).
CREATE TABLE report_snapshots (
    id TEXT PRIMARY KEY,
    period TEXT NOT NULL,
    label TEXT NOT NULL,
    region_id TEXT NOT NULL,
    generated_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX report_snapshots_key ON report_snapshots (period, label, region_id);
CREATE INDEX report_snapshots_generated ON report_snapshots (generated_ms);
