package config_test

import (
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/artifactstore/artifact-store/pkg/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoad(t *testing.T) {
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		over config.Overrides
		want config.Config
		errs []string // substrings of the error; nil: no error
	}{
		{
			name: "good_defaults_xdg",
			env:  map[string]string{"XDG_DATA_HOME": "/data", "HOME": "/home/u"},
			want: config.Config{DataDir: "/data/artifact-store", DatabaseURL: "sqlite:/data/artifact-store/store.db",
				StorageBackend: "local", LocalRoot: "/data/artifact-store/objects", LogLevel: slog.LevelInfo},
		},
		{
			name: "good_defaults_home_relative_xdg_ignored",
			env:  map[string]string{"XDG_DATA_HOME": "rel", "HOME": "/home/u"},
			want: config.Config{DataDir: "/home/u/.local/share/artifact-store", DatabaseURL: "sqlite:/home/u/.local/share/artifact-store/store.db",
				StorageBackend: "local", LocalRoot: "/home/u/.local/share/artifact-store/objects"},
		},
		{
			name: "good_env",
			env: map[string]string{"HOME": "/home/u", config.EnvDatabaseURL: "postgres://as:secret@db:5432/as?sslmode=disable",
				config.EnvLocalRoot: tmp + "/objects", config.EnvLogLevel: "DEBUG",
				config.EnvS3Bucket: "b", config.EnvS3Region: "eu-west-1", config.EnvS3Endpoint: "http://minio:9000", config.EnvS3Prefix: "p/"},
			want: config.Config{DataDir: "/home/u/.local/share/artifact-store", DatabaseURL: "postgres://as:secret@db:5432/as?sslmode=disable",
				StorageBackend: "local", LocalRoot: tmp + "/objects", LogLevel: slog.LevelDebug,
				S3: config.S3{Endpoint: "http://minio:9000", Bucket: "b", Region: "eu-west-1", Prefix: "p/", PathStyle: true}},
		},
		{
			name: "good_flags_override_env",
			env:  map[string]string{"HOME": "/home/u", config.EnvDatabaseURL: "postgres://h/db", config.EnvLocalRoot: "/nowhere/x", config.EnvLogLevel: "error"},
			over: config.Overrides{DatabaseURL: "sqlite:/tmp/x.db", LocalRoot: tmp, LogLevel: "warn"},
			want: config.Config{DataDir: "/home/u/.local/share/artifact-store", DatabaseURL: "sqlite:/tmp/x.db",
				StorageBackend: "local", LocalRoot: tmp, LogLevel: slog.LevelWarn},
		},
		{
			name: "good_flag_rescues_bad_env",
			env:  map[string]string{"HOME": "/h", config.EnvDatabaseURL: "mysql://x", config.EnvLogLevel: "loud"},
			over: config.Overrides{DatabaseURL: "sqlite:rel.db", LogLevel: "info"},
			want: config.Config{DataDir: "/h/.local/share/artifact-store", DatabaseURL: "sqlite:rel.db",
				StorageBackend: "local", LocalRoot: "/h/.local/share/artifact-store/objects"},
		},
		{
			name: "good_s3_accepted",
			env:  map[string]string{"HOME": "/h", config.EnvStorageBackend: "s3", config.EnvS3Bucket: "b"},
			want: config.Config{DataDir: "/h/.local/share/artifact-store", DatabaseURL: "sqlite:/h/.local/share/artifact-store/store.db",
				StorageBackend: "s3", LocalRoot: "/h/.local/share/artifact-store/objects", S3: config.S3{Bucket: "b"}},
		},
		{
			name: "fail_scheme_env",
			env:  map[string]string{"HOME": "/h", config.EnvDatabaseURL: "mysql://u@h/db"},
			errs: []string{"$ARTIFACTSTORE_DATABASE_URL", `unsupported scheme "mysql:"`},
		},
		{
			name: "fail_scheme_flag",
			env:  map[string]string{"HOME": "/h"},
			over: config.Overrides{DatabaseURL: "store.db"},
			errs: []string{"--db", "is not a URL"},
		},
		{
			name: "fail_sqlite_empty",
			env:  map[string]string{"HOME": "/h", config.EnvDatabaseURL: "sqlite:"},
			errs: []string{"$ARTIFACTSTORE_DATABASE_URL", "empty path"},
		},
		{
			name: "fail_sqlite_query",
			env:  map[string]string{"HOME": "/h", config.EnvDatabaseURL: "sqlite:/x.db?mode=ro"},
			errs: []string{"no query parameters"},
		},
		{
			name: "fail_postgres_bad_url_hides_password",
			env:  map[string]string{"HOME": "/h", config.EnvDatabaseURL: "postgres://u:hunter2@h:port/db"},
			errs: []string{"$ARTIFACTSTORE_DATABASE_URL", "not a valid URL"},
		},
		{
			name: "fail_root_relative",
			env:  map[string]string{"HOME": "/h", config.EnvLocalRoot: "objects"},
			errs: []string{"$ARTIFACTSTORE_STORAGE_LOCAL_ROOT", "relative"},
		},
		{
			name: "fail_root_is_file",
			env:  map[string]string{"HOME": "/h"},
			over: config.Overrides{LocalRoot: file},
			errs: []string{"--storage-root", "not a directory"},
		},
		{
			name: "fail_root_under_file",
			env:  map[string]string{"HOME": "/h", config.EnvLocalRoot: file + "/objects"},
			errs: []string{"$ARTIFACTSTORE_STORAGE_LOCAL_ROOT", "cannot be created"},
		},
		{
			name: "fail_log_level",
			env:  map[string]string{"HOME": "/h", config.EnvLogLevel: "loud"},
			errs: []string{"$ARTIFACTSTORE_LOG_LEVEL", `"loud"`},
		},
		{
			name: "fail_backend",
			env:  map[string]string{"HOME": "/h", config.EnvStorageBackend: "ftp"},
			errs: []string{"$ARTIFACTSTORE_STORAGE_BACKEND", `"ftp"`},
		},
		{
			name: "fail_several_at_once",
			env:  map[string]string{"HOME": "/h", config.EnvDatabaseURL: "mysql://x", config.EnvLogLevel: "loud", config.EnvLocalRoot: "rel"},
			errs: []string{"$ARTIFACTSTORE_DATABASE_URL", "$ARTIFACTSTORE_LOG_LEVEL", "$ARTIFACTSTORE_STORAGE_LOCAL_ROOT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.LoadWith(env(tt.env), tt.over)
			if tt.errs != nil {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				if !errors.Is(err, config.ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				for _, s := range tt.errs {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestLoadUsesEnvOnly(t *testing.T) {
	got, err := config.Load(env(map[string]string{"XDG_DATA_HOME": "/d", config.EnvLogLevel: "warn"}))
	if err != nil {
		t.Fatal(err)
	}
	if got.DatabaseURL != "sqlite:/d/artifact-store/store.db" || got.LogLevel != slog.LevelWarn {
		t.Errorf("Load = %+v", got)
	}
}

func TestRegisterFlags(t *testing.T) {
	var o config.Overrides
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	o.RegisterFlags(fs)
	if err := fs.Parse([]string{"--db", "sqlite:/a.db", "--storage-root", "/r", "--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	want := config.Overrides{DatabaseURL: "sqlite:/a.db", LocalRoot: "/r", LogLevel: "debug"}
	if o != want {
		t.Errorf("overrides %+v, want %+v", o, want)
	}
}

func TestCheckBackend(t *testing.T) {
	if err := (config.Config{StorageBackend: "local"}).CheckBackend(); err != nil {
		t.Errorf("local: %v", err)
	}
	for _, tt := range []struct {
		name string
		s3   config.S3
		errs []string // substrings; nil: accepted
	}{
		{"good_aws", config.S3{Bucket: "my-bucket.1"}, nil},
		{"good_minio", config.S3{Bucket: "artifacts", Endpoint: "http://127.0.0.1:9000", PathStyle: true}, nil},
		{"fail_no_bucket", config.S3{}, []string{"ARTIFACTSTORE_S3_BUCKET is required"}},
		{"fail_bucket_upper", config.S3{Bucket: "My_Bucket"}, []string{"lowercase"}},
		{"fail_bucket_short", config.S3{Bucket: "ab"}, []string{"3 to 63"}},
		{"fail_bucket_dash", config.S3{Bucket: "-abc"}, []string{"start and end"}},
		{"fail_endpoint_scheme", config.S3{Bucket: "abc", Endpoint: "minio:9000"}, []string{"ARTIFACTSTORE_S3_ENDPOINT", "http://"}},
		{"fail_endpoint_credentials", config.S3{Bucket: "abc", Endpoint: "http://key:hunter2@minio:9000"}, []string{"must not carry credentials"}},
		{"fail_both", config.S3{Endpoint: "ftp://x"}, []string{"BUCKET", "ENDPOINT"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := (config.Config{StorageBackend: "s3", S3: tt.s3}).CheckBackend()
			if tt.errs == nil {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
			for _, e := range tt.errs {
				if !strings.Contains(err.Error(), e) {
					t.Errorf("error %q lacks %q", err, e)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats a password: %v", err)
			}
		})
	}
}

func TestS3PathStyle(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want bool
		bad  bool
	}{
		{map[string]string{"HOME": "/h"}, false, false},
		{map[string]string{"HOME": "/h", config.EnvS3Endpoint: "http://m:9000"}, true, false},
		{map[string]string{"HOME": "/h", config.EnvS3Endpoint: "http://m:9000", config.EnvS3PathStyle: "false"}, false, false},
		{map[string]string{"HOME": "/h", config.EnvS3PathStyle: "TRUE"}, true, false},
		{map[string]string{"HOME": "/h", config.EnvS3PathStyle: "maybe"}, false, true},
	} {
		c, err := config.Load(env(tt.env))
		if (err != nil) != tt.bad || c.S3.PathStyle != tt.want {
			t.Errorf("%v: PathStyle %v, %v; want %v (error: %v)", tt.env, c.S3.PathStyle, err, tt.want, tt.bad)
		}
	}
}

func TestDatabaseURL(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_DATA_HOME": "/data"}, "sqlite:/data/artifact-store/store.db"},
		{map[string]string{"HOME": "/home/u"}, "sqlite:/home/u/.local/share/artifact-store/store.db"},
		{map[string]string{"HOME": "/home/u", config.EnvDatabaseURL: "postgres://h/db"}, "postgres://h/db"},
	}
	for _, tt := range tests {
		if got, err := config.DatabaseURL(env(tt.env)); err != nil || got != tt.want {
			t.Errorf("DatabaseURL(%v) = %q, %v; want %q", tt.env, got, err, tt.want)
		}
	}
}
