package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"

	"github.com/artifactstore/artifact-store/migrations"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// gooseTable is goose's version table, kept out of the logical schema.
const gooseTable = "goose_db_version"

// SchemaStatus compares the database's schema version with the latest
// migration this program embeds.
type SchemaStatus struct {
	Current int64 // applied version; 0 for an empty database
	Latest  int64 // newest embedded migration
	Pending bool  // migrations remain to apply
}

// provider builds a goose provider over the dialect's embedded tree. On
// PostgreSQL an advisory session lock serialises concurrent migrators.
func (d *DB) provider() (*goose.Provider, error) {
	var (
		dir  string
		gd   goose.Dialect
		opts = []goose.ProviderOption{goose.WithTableName(gooseTable)}
	)
	switch d.dialect {
	case SQLite:
		dir, gd = migrations.SQLiteDir, goose.DialectSQLite3
	case Postgres:
		dir, gd = migrations.PostgresDir, goose.DialectPostgres
		l, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, fmt.Errorf("db: migration lock: %w", err)
		}
		opts = append(opts, goose.WithSessionLocker(l))
	default:
		return nil, fmt.Errorf("db: no migrations for dialect %q", d.dialect)
	}
	sub, err := fs.Sub(migrations.FS, dir)
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	p, err := goose.NewProvider(gd, d.SQL, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("db: migrations: %w", err)
	}
	return p, nil
}

// Migrate applies every pending migration. A schema newer than this
// program (migrated by a later release) is refused with ErrSchemaAhead:
// nothing is applied, and the caller must not use the database.
func (d *DB) Migrate(ctx context.Context) error {
	p, err := d.provider()
	if err != nil {
		return err
	}
	if err := d.refuseAhead(ctx); err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	return nil
}

// MigrateFresh drops every table the migrations created (and their data:
// the event log too) and migrates from scratch. It is for development and
// tests; as-events asks for --fresh explicitly.
func (d *DB) MigrateFresh(ctx context.Context) error {
	p, err := d.provider()
	if err != nil {
		return err
	}
	// This program holds no down migrations for a newer schema's versions.
	if err := d.refuseAhead(ctx); err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		return fmt.Errorf("db: migrate fresh: down: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("db: migrate fresh: up: %w", err)
	}
	return nil
}

// SchemaStatus reports the applied and the latest schema version.
func (d *DB) SchemaStatus(ctx context.Context) (SchemaStatus, error) {
	p, err := d.provider()
	if err != nil {
		return SchemaStatus{}, err
	}
	var st SchemaStatus
	if srcs := p.ListSources(); len(srcs) > 0 {
		st.Latest = srcs[len(srcs)-1].Version
	}
	exists, err := d.tableExists(ctx, gooseTable)
	if err != nil {
		return SchemaStatus{}, err
	}
	if exists {
		if st.Current, err = p.GetDBVersion(ctx); err != nil {
			return SchemaStatus{}, fmt.Errorf("db: schema version: %w", err)
		}
	}
	st.Pending = st.Current < st.Latest
	return st, nil
}

// CheckSchema returns an error wrapping ErrSchemaBehind if migrations are
// pending, or ErrSchemaAhead if the database is newer than this program.
func (d *DB) CheckSchema(ctx context.Context) error {
	st, err := d.SchemaStatus(ctx)
	if err != nil {
		return err
	}
	switch {
	case st.Current > st.Latest:
		return fmt.Errorf("%w (database at version %d, this program knows %d)", ErrSchemaAhead, st.Current, st.Latest)
	case st.Pending:
		return fmt.Errorf("%w (database at version %d, latest is %d)", ErrSchemaBehind, st.Current, st.Latest)
	}
	return nil
}

// refuseAhead returns an error wrapping ErrSchemaAhead if the database is
// at a version newer than the latest migration this program embeds.
func (d *DB) refuseAhead(ctx context.Context) error {
	st, err := d.SchemaStatus(ctx)
	if err != nil {
		return err
	}
	if st.Current > st.Latest {
		return fmt.Errorf("%w (database at version %d, this program knows %d)", ErrSchemaAhead, st.Current, st.Latest)
	}
	return nil
}

// tableExists asks the catalogue without touching the table, so that
// status never creates goose's version table.
func (d *DB) tableExists(ctx context.Context, name string) (bool, error) {
	var q string
	switch d.dialect {
	case SQLite:
		q = `SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1`
	default:
		q = `SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	}
	var one int
	err := d.SQL.QueryRowContext(ctx, q, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("db: schema status: %w", err)
	}
	return true, nil
}
