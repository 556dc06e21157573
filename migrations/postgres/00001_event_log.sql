-- The append-only event log (docs/adr/0002-event-log.md).
-- +goose Up
CREATE TABLE event_head (
    id   BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL CHECK (seq >= 0),
    hash BYTEA  NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO event_head (id, seq, hash) VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);

CREATE TABLE events (
    seq         BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 1),
    type        TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    recorded_at TEXT   NOT NULL,
    payload     BYTEA  NOT NULL,
    prev_hash   BYTEA  NOT NULL,
    hash        BYTEA  NOT NULL
);
CREATE INDEX events_type_seq ON events (type, seq);

-- +goose Down
DROP TABLE events;
DROP TABLE event_head;
