-- 任务督导: one row per (template, period, venue) a recurring task was
-- generated for; the primary key makes generation happen once, across
-- restarts and replicas.
CREATE TABLE task_runs (
    template_id TEXT NOT NULL,
    period TEXT NOT NULL,
    venue_id TEXT NOT NULL,
    task_id TEXT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (template_id, period, venue_id)
);
