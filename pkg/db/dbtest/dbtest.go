// Package dbtest gives tests a fresh, migrated database of either dialect.
//
// SQLite databases live in t.TempDir(). PostgreSQL databases are created,
// uniquely named, on the server at ARTIFACTSTORE_TEST_DATABASE_URL (see
// scripts/with-postgres.sh) and dropped at cleanup. Without that variable the
// PostgreSQL tests skip — unless ARTIFACTSTORE_TEST_REQUIRE_POSTGRES=1, when
// they fail, so that CI cannot pass by skipping.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/jackc/pgx/v5"
)

// Environment variables read by this package.
const (
	EnvURL             = "ARTIFACTSTORE_TEST_DATABASE_URL"
	EnvRequirePostgres = "ARTIFACTSTORE_TEST_REQUIRE_POSTGRES"
)

// SQLiteURL returns the URL of a new SQLite file in a temporary directory.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "store.db")
}

// SQLite opens (and thereby migrates) a new SQLite database, closed at
// cleanup.
func SQLite(t testing.TB) *db.DB {
	t.Helper()
	return open(t, SQLiteURL(t), false)
}

// PostgresURL creates an empty, uniquely named database on the test server
// and returns its URL; the database is dropped at cleanup.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		if os.Getenv(EnvRequirePostgres) == "1" {
			t.Fatalf("dbtest: %s=1 but %s is not set (run under scripts/with-postgres.sh)", EnvRequirePostgres, EnvURL)
		}
		t.Skipf("dbtest: %s not set; skipping PostgreSQL", EnvURL)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	name := "as_test_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", EnvURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

// Postgres returns a fresh, migrated PostgreSQL database, closed and
// dropped at cleanup.
func Postgres(t testing.TB) *db.DB {
	t.Helper()
	return open(t, PostgresURL(t), true)
}

// Open opens a database of the named dialect with Open or Postgres.
func Open(t testing.TB, d db.Dialect) *db.DB {
	t.Helper()
	if d == db.Postgres {
		return Postgres(t)
	}
	return SQLite(t)
}

// URL returns a new empty database URL of the named dialect.
func URL(t testing.TB, d db.Dialect) string {
	t.Helper()
	if d == db.Postgres {
		return PostgresURL(t)
	}
	return SQLiteURL(t)
}

// Each runs f as a subtest for each dialect, with a fresh migrated database.
func Each(t *testing.T, f func(t *testing.T, d *db.DB)) {
	t.Helper()
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			f(t, Open(t, dialect))
		})
	}
}

func open(t testing.TB, rawURL string, migrate bool) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := db.Open(ctx, rawURL)
	if err != nil {
		t.Fatalf("dbtest: open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if migrate {
		if err := d.Migrate(ctx); err != nil {
			t.Fatalf("dbtest: migrate: %v", err)
		}
	}
	return d
}
