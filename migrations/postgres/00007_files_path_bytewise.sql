-- Bytewise path ranges within a package (issue 20). The path-tree check of
-- an ingest (pkg/registry/pathtree.go) asks, for every new path p, whether
-- the package holds a file between p/ and p0 compared bytewise (COLLATE
-- "C"). The primary key's index uses the database's collation, which under
-- a locale such as C.UTF-8 or en_US.UTF-8 cannot serve a "C" range, so
-- each check scanned the package's files: an ingest cost grew with the
-- square of the package. This index serves it.
-- +goose Up
CREATE INDEX artifact_files_path_bytewise ON artifact_files (package_name, package_version, path COLLATE "C");

-- +goose Down
DROP INDEX artifact_files_path_bytewise;
