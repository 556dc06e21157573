-- Package lifecycle: tags, times from events, expiry
-- (docs/adr/0010-tags-and-expiry.md). artifact_packages gains columns
-- instead of a new CHECK on state: SQLite cannot alter a CHECK constraint,
-- and rebuilding the table would need foreign keys switched off (a DROP of
-- the old table cascades into artifact_files and retention_state).
-- Times are view times: UTC, fixed width "2006-01-02T15:04:05.000000000Z",
-- so that text order is time order. Rows that exist before this migration
-- get their times on the next as-replay.
-- +goose Up
ALTER TABLE artifact_packages ADD COLUMN created_at TEXT;
ALTER TABLE artifact_packages ADD COLUMN finalized_at TEXT;
ALTER TABLE artifact_packages ADD COLUMN lifecycle TEXT NOT NULL DEFAULT 'live'
    CHECK (lifecycle IN ('live', 'expired', 'abandoned', 'deleted'));
ALTER TABLE artifact_packages ADD COLUMN ended_at TEXT;
ALTER TABLE artifact_packages ADD COLUMN ended_reason TEXT;
ALTER TABLE artifact_packages ADD COLUMN ended_seq BIGINT;
CREATE INDEX artifact_packages_lifecycle ON artifact_packages (lifecycle, state);

CREATE TABLE package_tags (
    package_name    TEXT   NOT NULL,
    tag             TEXT   NOT NULL,
    package_version TEXT   NOT NULL,
    updated_seq     BIGINT NOT NULL,
    PRIMARY KEY (package_name, tag),
    FOREIGN KEY (package_name, package_version) REFERENCES artifact_packages (name, version) ON DELETE CASCADE
);
CREATE INDEX package_tags_version ON package_tags (package_name, package_version);

-- +goose Down
DROP TABLE package_tags;
DROP INDEX artifact_packages_lifecycle;
ALTER TABLE artifact_packages DROP COLUMN ended_seq;
ALTER TABLE artifact_packages DROP COLUMN ended_reason;
ALTER TABLE artifact_packages DROP COLUMN ended_at;
ALTER TABLE artifact_packages DROP COLUMN lifecycle;
ALTER TABLE artifact_packages DROP COLUMN finalized_at;
ALTER TABLE artifact_packages DROP COLUMN created_at;
