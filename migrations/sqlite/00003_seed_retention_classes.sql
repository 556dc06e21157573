-- The five v1 retention classes (docs/adr/0002-event-log.md, "Retention
-- classes"). Seed data, not events: a class is configuration that events
-- refer to by name.
-- +goose Up
INSERT INTO retention_classes (name, purpose, min_retention_days, default_retrieval_tier) VALUES
    ('ephemeral',  'scratch and pull-request builds, safe to lose after a week', 7, 'hot'),
    ('standard',   'ordinary CI builds of main branches', 90, 'hot'),
    ('release',    'published releases that users install', 730, 'warm'),
    ('compliance', 'artifacts kept for audit and legal obligations', 2555, 'cold'),
    ('archive',    'long-term preservation, rarely read, slow to restore', 3650, 'archive');

-- +goose Down
-- The views that reference the classes are derived data: empty them first
-- (as-replay rebuilds them from the log once the classes are back), or the
-- foreign keys refuse to let the seed go.
DELETE FROM retention_state;
DELETE FROM artifact_files;
DELETE FROM artifact_packages;
DELETE FROM retention_classes WHERE name IN ('ephemeral', 'standard', 'release', 'compliance', 'archive');
