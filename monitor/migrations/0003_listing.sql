-- 挂牌督办: the level that listed a hazard (county or city) and who; only
-- that level can close (摘牌) it.
ALTER TABLE hazards ADD COLUMN listed_level TEXT;
ALTER TABLE hazards ADD COLUMN listed_by TEXT;
