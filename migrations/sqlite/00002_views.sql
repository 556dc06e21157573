-- Materialised views of the event log (DESIGN.md §6). Every row is derived
-- from events only; *_seq columns name the event that last shaped the row.
-- Digests: digest_algorithm is the primary's name ("blake3"),
-- digest_primary and digest_sha256 are lowercase hex, and content_address is
-- the text form "<digest_algorithm>:<digest_primary>".
-- +goose Up
CREATE TABLE retention_classes (
    name                   TEXT   NOT NULL PRIMARY KEY,
    purpose                TEXT   NOT NULL,
    min_retention_days     BIGINT NOT NULL CHECK (min_retention_days >= 0),
    default_retrieval_tier TEXT   NOT NULL CHECK (default_retrieval_tier IN ('hot', 'warm', 'cold', 'archive'))
);

CREATE TABLE metadata_schemas (
    name        TEXT   NOT NULL,
    version     BIGINT NOT NULL CHECK (version >= 1),
    schema_cbor BLOB   NOT NULL,
    digest      TEXT   NOT NULL,
    created_seq BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE artifact_packages (
    name            TEXT   NOT NULL,
    version         TEXT   NOT NULL,
    retention_class TEXT   NOT NULL REFERENCES retention_classes (name),
    labels          BLOB   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('open', 'finalized')),
    manifest_digest TEXT,
    file_count      BIGINT NOT NULL DEFAULT 0,
    total_size      BIGINT NOT NULL DEFAULT 0,
    created_seq     BIGINT NOT NULL,
    updated_seq     BIGINT NOT NULL,
    finalized_seq   BIGINT,
    PRIMARY KEY (name, version),
    CHECK ((state = 'finalized') = (manifest_digest IS NOT NULL))
);
CREATE INDEX artifact_packages_manifest_digest ON artifact_packages (manifest_digest);

CREATE TABLE artifact_files (
    package_name     TEXT   NOT NULL,
    package_version  TEXT   NOT NULL,
    path             TEXT   NOT NULL,
    size             BIGINT NOT NULL CHECK (size >= 0),
    digest_algorithm TEXT   NOT NULL,
    digest_primary   TEXT   NOT NULL,
    digest_sha256    TEXT   NOT NULL,
    content_address  TEXT   NOT NULL CHECK (content_address = digest_algorithm || ':' || digest_primary),
    created_seq      BIGINT NOT NULL,
    PRIMARY KEY (package_name, package_version, path),
    FOREIGN KEY (package_name, package_version) REFERENCES artifact_packages (name, version) ON DELETE CASCADE
);
CREATE INDEX artifact_files_content_address ON artifact_files (content_address);
CREATE INDEX artifact_files_digest_sha256 ON artifact_files (digest_sha256);

CREATE TABLE storage_locations (
    content_address  TEXT   NOT NULL,
    backend_id       TEXT   NOT NULL,
    key              TEXT   NOT NULL,
    size             BIGINT NOT NULL CHECK (size >= 0),
    digest_algorithm TEXT   NOT NULL,
    digest_primary   TEXT   NOT NULL,
    digest_sha256    TEXT   NOT NULL,
    retrieval_tier   TEXT   NOT NULL CHECK (retrieval_tier IN ('hot', 'warm', 'cold', 'archive')),
    restore_status   TEXT   NOT NULL CHECK (restore_status IN ('none', 'pending', 'in_progress', 'restored', 'failed')),
    created_seq      BIGINT NOT NULL,
    updated_seq      BIGINT NOT NULL,
    PRIMARY KEY (content_address, backend_id),
    CHECK (content_address = digest_algorithm || ':' || digest_primary)
);
CREATE INDEX storage_locations_digest_sha256 ON storage_locations (digest_sha256);

CREATE TABLE retention_state (
    package_name    TEXT    NOT NULL,
    package_version TEXT    NOT NULL,
    retention_class TEXT    NOT NULL REFERENCES retention_classes (name),
    hold            BOOLEAN NOT NULL,
    hold_reason     TEXT,
    retain_until    TEXT,
    updated_seq     BIGINT  NOT NULL,
    PRIMARY KEY (package_name, package_version),
    FOREIGN KEY (package_name, package_version) REFERENCES artifact_packages (name, version) ON DELETE CASCADE
);
CREATE INDEX retention_state_class ON retention_state (retention_class);

-- +goose Down
DROP TABLE retention_state;
DROP TABLE storage_locations;
DROP TABLE artifact_files;
DROP TABLE artifact_packages;
DROP TABLE metadata_schemas;
DROP TABLE retention_classes;
