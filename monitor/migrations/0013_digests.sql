-- Digests (notify.digest_ms): a delivery merged into another that carries
-- it (state MERGED until the carrier is sent or fails for good).
ALTER TABLE deliveries ADD COLUMN digest_id TEXT;
CREATE INDEX deliveries_digest ON deliveries (digest_id);
