-- Garbage collection and scrubbing state (docs/adr/0011-garbage-collection.md).
-- Views of the log like the others: every row is derived from v1.gc.* and
-- v1.scrub.* events only; *_at columns are event times (RFC 3339, UTC).
-- Independent of 00004: it references no table that 00004 adds.
-- +goose Up
-- gc_objects: the objects a mark condemned and what became of them. No row
-- means live (never condemned, or revived by a reference). state:
-- 'condemned' (a mark found no reference), 'deleting' (a sweep's tombstone:
-- no reference may be committed while it stands), 'deleted' (the bytes are
-- gone; the row stays until a reference revives the object, so that an
-- ingest can tell that bytes it found may have been deleted since).
CREATE TABLE gc_objects (
    content_address TEXT   NOT NULL,
    backend_id      TEXT   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('condemned', 'deleting', 'deleted')),
    size            BIGINT NOT NULL CHECK (size >= 0),
    orphan          BOOLEAN NOT NULL,
    condemned_at    TEXT   NOT NULL,
    condemned_seq   BIGINT NOT NULL,
    updated_seq     BIGINT NOT NULL,
    PRIMARY KEY (content_address, backend_id)
);
CREATE INDEX gc_objects_state ON gc_objects (state, condemned_seq);

-- object_checks: the last scrub result of each stored object. state
-- 'verified' or 'corrupt' (detail says what differed); a repair returns a
-- corrupt object to 'verified'.
CREATE TABLE object_checks (
    content_address TEXT   NOT NULL,
    backend_id      TEXT   NOT NULL,
    state           TEXT   NOT NULL CHECK (state IN ('verified', 'corrupt')),
    detail          TEXT   NOT NULL,
    checked_at      TEXT   NOT NULL,
    updated_seq     BIGINT NOT NULL,
    PRIMARY KEY (content_address, backend_id)
);
CREATE INDEX object_checks_state ON object_checks (state);
CREATE INDEX object_checks_checked_at ON object_checks (checked_at);

-- +goose Down
DROP TABLE object_checks;
DROP TABLE gc_objects;
