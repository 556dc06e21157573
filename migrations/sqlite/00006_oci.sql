-- Views of the OCI distribution API (docs/adr/0012-oci-distribution-api.md):
-- what as-serve's clients pushed, rebuilt from the v1.oci.* events like every
-- other view. Independent of the package views: an OCI repository is a
-- package name, but nothing here references artifact_packages.
-- Digests: digest is the OCI digest the client named ("sha256:…" or
-- "sha512:…"); content_address is the store's BLAKE3 address of the same
-- bytes (a storage_locations row).
-- +goose Up
CREATE TABLE oci_blobs (
    repository      TEXT   NOT NULL,
    digest          TEXT   NOT NULL,
    content_address TEXT   NOT NULL,
    size            BIGINT NOT NULL CHECK (size >= 0),
    created_seq     BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX oci_blobs_digest ON oci_blobs (digest);
CREATE INDEX oci_blobs_content_address ON oci_blobs (content_address);

CREATE TABLE oci_manifests (
    repository      TEXT   NOT NULL,
    digest          TEXT   NOT NULL,
    media_type      TEXT   NOT NULL,
    artifact_type   TEXT   NOT NULL,
    subject         TEXT,
    annotations     TEXT,
    size            BIGINT NOT NULL CHECK (size >= 0),
    content_address TEXT   NOT NULL,
    created_seq     BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX oci_manifests_subject ON oci_manifests (repository, subject);
CREATE INDEX oci_manifests_content_address ON oci_manifests (content_address);

CREATE TABLE oci_tags (
    repository  TEXT   NOT NULL,
    tag         TEXT   NOT NULL,
    digest      TEXT   NOT NULL,
    updated_seq BIGINT NOT NULL,
    PRIMARY KEY (repository, tag)
);
CREATE INDEX oci_tags_digest ON oci_tags (repository, digest);

CREATE TABLE oci_uploads (
    id          TEXT   NOT NULL PRIMARY KEY,
    repository  TEXT   NOT NULL,
    created_seq BIGINT NOT NULL
);

-- +goose Down
DROP TABLE oci_uploads;
DROP TABLE oci_tags;
DROP TABLE oci_manifests;
DROP TABLE oci_blobs;
