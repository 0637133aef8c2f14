#!/usr/bin/env bash
# Restore a dump of scripts/backup.sh into an empty PostgreSQL database.
#
#   createdb autofactura_restored
#   scripts/restore.sh autofactura-20260101T033000Z.dump \
#       postgresql+psycopg://me@host/autofactura_restored
#
# The target is the second argument, else DATABASE_URL. It must be empty: the script refuses a
# database that has any table, so it cannot mix a backup into live data. The restore is one
# transaction: it completes or leaves the database empty. Afterwards the script prints what it
# restored (schema revision, invoices, issuers) to compare with the source.
#
# The restored installation needs the DATA_KEY of the backed-up one (to read the stored CSDs)
# and, to keep sessions and emailed links valid, its SECRET_KEY. Run
# `flask --app webapp.app db upgrade` when the code is newer than the dump.
#
# Environment: PG_BINDIR, directory of pg_restore and psql when those on PATH are too old.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/pg_common.sh
. "$here/pg_common.sh"

[[ $# -ge 1 && $# -le 2 ]] || die "usage: restore.sh DUMP [TARGET_DATABASE_URL]"
dump="$1"
target="${2:-${DATABASE_URL:-}}"
[[ -f "$dump" ]] || die "$dump: no such file"
[[ -n "$target" ]] || die "no target: give its URL or set DATABASE_URL"
if [[ -f "$dump.sha256" ]]; then
    (cd "$(dirname "$dump")" && sha256sum --quiet -c "$(basename "$dump").sha256") ||
        die "$dump does not match $dump.sha256"
fi
libpq_url "$target"
pg_restore="$(pg_tool pg_restore)"
psql="$(pg_tool psql)"

sql() { "$psql" --no-psqlrc --quiet --tuples-only --no-align --dbname="$PG_URL" -c "$1"; }

relations="$(sql "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'")"
[[ "$relations" == 0 ]] || die "the target database is not empty ($relations tables, views or" \
    "sequences): restore into a new one (createdb)"

"$pg_restore" --no-owner --no-acl --exit-on-error --single-transaction --dbname="$PG_URL" "$dump"

echo "restored $dump"
echo "  schema revision: $(sql 'SELECT version_num FROM alembic_version')"
invoices="$(sql 'SELECT count(*) FROM invoice')"
archived="$(sql 'SELECT count(*) FROM invoice_archive')"
echo "  invoices: $invoices, of which archived (XML in invoice_archive): $archived"
echo "  issuers: $(sql 'SELECT count(*) FROM issuer')" \
    "(their CSDs open only with the DATA_KEY of the backed-up installation)"
