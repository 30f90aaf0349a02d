-- Digests (notify.digest_ms): a delivery merged into another that carries
-- it (state MERGED until the carrier is sent or fails for good).
ALTER TABLE deliveries ADD COLUMN digest_id TEXT;
CREATE INDEX deliveries_digest ON deliveries (digest_id);
-- Registry metadata as the sites use it: a crane's 使用登记编号 (use
-- registration number), shown in messages and the UI.
ALTER TABLE devices ADD COLUMN registration TEXT;
