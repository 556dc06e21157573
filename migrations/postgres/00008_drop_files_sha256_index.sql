-- One index fewer for every ingested file (issue 20). artifact_files had
-- two indexes on random keys, content_address and digest_sha256, and
-- storage_locations two more; in a store of 200,000 objects each new file
-- cost a leaf page of each that the page cache no longer held (15 page
-- reads and 21 page writes per file, where an empty store needs 1.4 and
-- 3.9). A file's SHA-256 is its object's, and every object a file
-- references has a storage_locations row (GC removes only unreferenced
-- ones), so the lookups by SHA-256 go through storage_locations_digest_sha256
-- and then artifact_files_content_address instead. Dropping the index
-- saves a quarter of those page reads and writes.
-- +goose Up
DROP INDEX artifact_files_digest_sha256;

-- +goose Down
CREATE INDEX artifact_files_digest_sha256 ON artifact_files (digest_sha256);
