#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on 127.0.0.1 for the distributed search's tests and benchmark.
#
#   scripts/test-postgres.sh run CMD [ARGS...]  start a cluster in a temporary folder, run CMD with
#                                               FMNIST_TEST_POSTGRES_URL set, then stop and remove it
#   scripts/test-postgres.sh start DIR          create and start a cluster in DIR (empty or absent);
#                                               prints its URL (postgresql://postgres@127.0.0.1:PORT/fmnist)
#   scripts/test-postgres.sh stop DIR           stop the cluster in DIR
#
# It uses Debian's PostgreSQL (apt-get install postgresql; the newest /usr/lib/postgresql/*/bin,
# or $PG_BIN). As root the server runs as the `postgres` user, which PostgreSQL requires. The
# cluster listens on 127.0.0.1 only, on the first free port from 54320 ($FMNIST_PG_PORT to choose
# one), with `trust` authentication: any local user may connect, so use it for tests only.
set -euo pipefail

pg_bin() {
  if [[ -n "${PG_BIN:-}" ]]; then echo "$PG_BIN"; return; fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -z "$dir" ]]; then
    echo "test-postgres: no PostgreSQL found under /usr/lib/postgresql; apt-get install postgresql, or set PG_BIN" >&2
    exit 1
  fi
  echo "$dir"
}

# Runs a command as the cluster's owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local dir=$1 bin port
  bin=$(pg_bin)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
  port=${FMNIST_PG_PORT:-}
  if [[ -z "$port" ]]; then
    for candidate in $(seq 54320 54399); do
      if port_free "$candidate"; then port=$candidate; break; fi
    done
  fi
  [[ -n "$port" ]] || { echo "test-postgres: no free port in 54320-54399" >&2; exit 1; }
  as_owner "$bin/initdb" -D "$dir/data" --auth=trust --username=postgres --encoding=UTF8 --no-instructions >"$dir/initdb.log"
  # The coordination benchmark opens 64 connections, the tests a few dozen: the default 100 is enough.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir" start >/dev/null
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres fmnist
  echo "$port" >"$dir/port"
  echo "postgresql://postgres@127.0.0.1:$port/fmnist"
}

stop() {
  local dir=$1
  [[ -d "$dir/data" ]] || return 0
  as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
}

case "${1:-}" in
  start) start "${2:?usage: test-postgres.sh start DIR}" ;;
  stop) stop "${2:?usage: test-postgres.sh stop DIR}" ;;
  run)
    shift
    [[ $# -gt 0 ]] || { echo "usage: test-postgres.sh run CMD [ARGS...]" >&2; exit 2; }
    dir=$(mktemp -d -t fmnist-postgres-XXXXXX)
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    chmod 755 "$dir"
    FMNIST_TEST_POSTGRES_URL=$(start "$dir")
    export FMNIST_TEST_POSTGRES_URL
    echo "test-postgres: $FMNIST_TEST_POSTGRES_URL" >&2
    "$@"
    ;;
  *)
    echo "usage: test-postgres.sh run CMD [ARGS...] | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
