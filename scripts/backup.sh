#!/usr/bin/env bash
# Back up the Autofactura database: a pg_dump archive (custom format) of DATABASE_URL.
#
#   scripts/backup.sh [DEST]
#
# DEST is a file, or a directory (default: the current one) that gets
# autofactura-YYYYMMDDTHHMMSSZ.dump. The dump is written aside and moved into place only once
# pg_restore can read its table of contents, so a file with the final name is a whole dump;
# a DEST.sha256 beside it lets a copy elsewhere be checked (sha256sum -c).
#
# The dump holds every table, the stamped XML included (invoice.xml, invoice_archive.xml_gz):
# it is the legal record, which SAT requires to be kept for 5 years. It does not hold DATA_KEY
# nor SECRET_KEY: back those up apart (without DATA_KEY the CSDs in the dump cannot be read).
# Restore with scripts/restore.sh; tests/test_backup.py does both.
#
# Environment:
#   DATABASE_URL  the app's database (postgresql+psycopg://user:pass@host:port/name)
#   PG_BINDIR     directory of pg_dump, when the one on PATH is older than the server
#   BACKUP_KEEP   with a directory DEST: keep only the newest N dumps there (default: all)
set -euo pipefail
umask 077 # the dump holds customers' data: readable by its owner only

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/pg_common.sh
. "$here/pg_common.sh"

dest="${1:-.}"
[[ -n "${DATABASE_URL:-}" ]] || die "DATABASE_URL is not set"
libpq_url "$DATABASE_URL"
pg_dump="$(pg_tool pg_dump)"
pg_restore="$(pg_tool pg_restore)"

if [[ -d "$dest" ]]; then
    dir="$dest"
    file="$dest/autofactura-$(date -u +%Y%m%dT%H%M%SZ).dump"
else
    dir=""
    file="$dest"
fi
partial="$file.partial"
trap 'rm -f "$partial"' EXIT

"$pg_dump" --format=custom --compress=6 --file="$partial" --dbname="$PG_URL"
"$pg_restore" --list "$partial" >/dev/null || die "the dump in $partial cannot be read back"
mv "$partial" "$file"
(cd "$(dirname "$file")" && sha256sum "$(basename "$file")" >"$(basename "$file").sha256")

echo "backup: $file ($(du -h "$file" | cut -f1)); DATA_KEY and SECRET_KEY are not in it"

if [[ -n "$dir" && -n "${BACKUP_KEEP:-}" ]]; then
    [[ "$BACKUP_KEEP" =~ ^[1-9][0-9]*$ ]] || die "BACKUP_KEEP=$BACKUP_KEEP is not a number >= 1"
    # Names sort by time: all but the newest BACKUP_KEEP go.
    mapfile -t old < <(find "$dir" -maxdepth 1 -name 'autofactura-*.dump' -printf '%f\n' |
        sort -r | tail -n "+$((BACKUP_KEEP + 1))")
    for name in "${old[@]}"; do
        rm -f "$dir/$name" "$dir/$name.sha256"
        echo "removed old backup: $dir/$name"
    done
fi
