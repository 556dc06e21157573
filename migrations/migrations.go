// Package migrations embeds the goose SQL migrations, one directory per
// dialect. Both trees must yield the same logical schema (tables, columns,
// type families, primary keys); pkg/db's tests compare them.
//
// Files are named NNNNN_what.sql and numbered alike in both directories, so
// that a version means the same schema on either database.
package migrations

import "embed"

// Directories inside FS, one per dialect.
const (
	SQLiteDir   = "sqlite"
	PostgresDir = "postgres"
)

// FS holds every migration file.
//
//go:embed sqlite/*.sql postgres/*.sql
var FS embed.FS
