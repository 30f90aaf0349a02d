-- Site liveness: each gateway's last heartbeat and what it reported, the
-- sites it serves, and since when the monitor has judged it silent (two
-- intervals without a heartbeat; NULL while it is heard).
CREATE TABLE gateway_heartbeats (
    gateway TEXT PRIMARY KEY,
    last_ms BIGINT NOT NULL,
    interval_ms BIGINT NOT NULL,
    report TEXT NOT NULL,
    silent_since_ms BIGINT
);
CREATE TABLE gateway_sites (
    gateway TEXT NOT NULL,
    site TEXT NOT NULL,
    PRIMARY KEY (gateway, site)
);
CREATE INDEX gateway_sites_site ON gateway_sites (site);
