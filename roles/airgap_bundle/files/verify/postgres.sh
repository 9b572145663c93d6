# Run by the verify step inside the bundle's PostgreSQL image (sh -s MAJOR):
# the contract the cluster's StatefulSet relies on, then a real start. Ends
# with `postgres --version`, which the task checks.
set -eu
major=$1
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u):$(id -g)" = 999:999 ] || fail "the image runs as $(id -u):$(id -g), not 999:999"
[ "$(getent passwd postgres | cut -d: -f3,4)" = 999:999 ] || fail "postgres is not 999:999 in /etc/passwd"
[ "$(getent group postgres | cut -d: -f3)" = 999 ] || fail "group postgres is not 999 in /etc/group"
for cmd in initdb postgres pg_isready psql pg_ctl; do
  found=$(command -v "$cmd" || echo missing)
  [ "$found" = "/usr/lib/postgresql/$major/bin/$cmd" ] || fail "$cmd on PATH is $found"
done
[ "$PGDATA" = /var/lib/postgresql/data ] || fail "PGDATA is $PGDATA"
[ -d /var/run/postgresql ] && [ -w /var/run/postgresql ] || fail "/var/run/postgresql is missing or not writable"

initdb --username=postgres --auth=trust >/tmp/initdb.log 2>&1 || { cat /tmp/initdb.log >&2; fail "initdb failed"; }
pg_ctl --wait --log=/tmp/postgres.log --options="-c listen_addresses=''" start >/dev/null \
  || { cat /tmp/postgres.log >&2; fail "postgres did not start"; }
pg_isready --quiet || fail "pg_isready says the server is not accepting connections"
version=$(psql --username=postgres --no-psqlrc --tuples-only --no-align --command='show server_version_num')
[ $((version / 10000)) = "$major" ] || fail "the server reports version $version"
pg_ctl --wait --mode=fast stop >/dev/null
postgres --version
