#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `start` installs Debian's server if missing,
# initdb's a cluster in a temp directory as an unprivileged user, starts it on a free port with
# its unix socket in that directory, and prints `export PUBLISH_GUARD_TEST_PG=...` lines for
# the caller to eval; `stop DIR` stops it and removes the directory.
#   eval "$(.ci/postgres.sh start)" ; ... ; .ci/postgres.sh stop "$PUBLISH_GUARD_TEST_PG_DIR"
set -euo pipefail

pg_bin() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u pgtest -- "$@"; else "$@"; fi
}

start() {
    local bin
    if ! bin=$(pg_bin); then
        echo "postgres.sh: installing Debian's postgresql" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        bin=$(pg_bin)
    fi
    if [ "$(id -u)" = 0 ] && ! id pgtest >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin pgtest
    fi
    local dir port
    dir=$(mktemp -d /tmp/publish-guard-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown pgtest "$dir"
    # A free port: the kernel picks one for a socket we close at once.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    echo "export PUBLISH_GUARD_TEST_PG='host=$dir port=$port user=postgres dbname=postgres'"
    echo "export PUBLISH_GUARD_TEST_PG_TCP='host=127.0.0.1 port=$port user=postgres dbname=postgres'"
    echo "export PUBLISH_GUARD_TEST_PG_DIR='$dir'"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    local bin
    bin=$(pg_bin) || exit 0
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
esac
