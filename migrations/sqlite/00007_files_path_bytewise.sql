-- Bytewise path ranges within a package (issue 20): on PostgreSQL an index
-- with COLLATE "C" (see postgres/00007). SQLite compares text bytewise
-- (BINARY) already, so its primary key serves them: nothing to change;
-- numbered alike so that version 7 means the same schema on both.
-- +goose Up
SELECT 1;

-- +goose Down
SELECT 1;
