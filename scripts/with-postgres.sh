#!/usr/bin/env bash
# with-postgres.sh CMD [ARGS...]
#
# Runs CMD with ARTIFACTSTORE_TEST_DATABASE_URL pointing at a throwaway
# PostgreSQL cluster owned by this run: initdb into a temporary directory,
# listening on a free loopback port and a Unix socket in that directory,
# stopped and removed when CMD ends (whatever its outcome). If the variable
# is already set, CMD runs against that server and nothing is started.
#
# Needs Debian's postgresql (initdb, pg_ctl); as root, the cluster runs as the
# postgres user. Fails loudly if the server cannot be started.
set -euo pipefail

if [ -n "${ARTIFACTSTORE_TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi

pgbin=${PGBIN:-}
if [ -z "$pgbin" ]; then
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && pgbin=$d; done
fi
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  echo "with-postgres: initdb not found (install Debian's postgresql, or set PGBIN or ARTIFACTSTORE_TEST_DATABASE_URL)" >&2
  exit 1
fi

dir=$(mktemp -d /tmp/as-pg.XXXXXX)
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$dir"
  as_pg=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cleanup() {
  "${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; echo "with-postgres: initdb failed" >&2; exit 1; }
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >/dev/null ||
  { cat "$dir/server.log" >&2; echo "with-postgres: server did not start" >&2; exit 1; }

export ARTIFACTSTORE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "with-postgres: throwaway cluster on port $port ($dir)" >&2
set +e
"$@"
rc=$?
exit $rc
