#!/usr/bin/env bash
# Start a throwaway PostgreSQL on loopback for tests and benchmarks; prints its DATABASE_URL.
#   eval "$(scripts/pg.sh start)"   → exports DATABASE_URL
#   scripts/pg.sh stop
# initdb refuses to run as root, so the cluster belongs to the postgres user.
set -euo pipefail
DIR=${UNIONHOME_PG_DIR:-/tmp/unionhome-pg}
PORT_FILE=$DIR/port

bin_dir() {
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  return 1
}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-start}" in
start)
  BIN=$(bin_dir) || {
    echo "PostgreSQL server programs not found; installing (apt-get install postgresql)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    BIN=$(bin_dir)
  }
  if [ -f "$PORT_FILE" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    PORT=$(cat "$PORT_FILE")
  else
    mkdir -p "$DIR" && [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR"
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
      as_pg "$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_pg sh -c "echo $PORT > '$PORT_FILE'"
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" start >/dev/null
  fi
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/unionhome"
  ;;
stop)
  BIN=$(bin_dir) && as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null 2>&1 || true
  ;;
esac
