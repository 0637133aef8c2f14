# Shared by scripts/backup.sh and scripts/restore.sh (sourced, not run).

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# pg_tool NAME: the path of a PostgreSQL client program: $PG_BINDIR/NAME when PG_BINDIR is
# set, else NAME on PATH, else the newest /usr/lib/postgresql/*/bin/NAME (Debian's layout).
pg_tool() {
    local name="$1" found
    if [[ -n "${PG_BINDIR:-}" ]]; then
        [[ -x "$PG_BINDIR/$name" ]] || die "$PG_BINDIR/$name not found (PG_BINDIR)"
        echo "$PG_BINDIR/$name"
        return
    fi
    if found="$(command -v "$name")"; then
        echo "$found"
        return
    fi
    found="$(find /usr/lib/postgresql -maxdepth 3 -path "*/bin/$name" 2>/dev/null |
        sort -t/ -k5,5n | tail -n 1)"
    [[ -n "$found" ]] || die "$name not found: install the PostgreSQL client (postgresql-client)"
    echo "$found"
}

# libpq_url URL: from the app's SQLAlchemy URL (postgresql+psycopg://user:pass@host/db) set
# PG_URL, the libpq URL without the password, and export PGPASSWORD when it has one.
libpq_url() {
    local parts
    case "$1" in
    postgresql://* | postgresql+*://* | postgres://*) ;;
    *) die "DATABASE_URL is not a PostgreSQL URL" \
        "(for SQLite, copy the database with: sqlite3 DB '.backup FILE')" ;;
    esac
    parts="$(
        python3 - "$1" <<'EOF'
import sys
from urllib.parse import unquote, urlsplit, urlunsplit

url = urlsplit(sys.argv[1])
userinfo, at, hostport = url.netloc.rpartition("@")
user, _, password = userinfo.partition(":")
netloc = f"{user}@{hostport}" if at and user else hostport
print(urlunsplit(("postgresql", netloc, url.path, url.query, "")))
print(unquote(password))
EOF
    )"
    PG_URL="$(sed -n 1p <<<"$parts")"
    PG_PASSWORD="$(sed -n 2p <<<"$parts")"
    export PG_URL
    # The password, if any, through the environment, so it never shows in the process list.
    if [[ -n "$PG_PASSWORD" ]]; then
        export PGPASSWORD="$PG_PASSWORD"
    fi
}
