#!/usr/bin/env bash
# Install what the test suite needs from Debian and is missing: a PostgreSQL server
# (the suite runs a second time on it), Chromium with its driver (browser tests), and npm and
# a Java runtime for the audits (axe-core and vnu.jar come from npm; vnu.jar runs on Java), and
# a Redis server (tests/test_two_instances.py starts its own, on a free port).
set -euo pipefail

need=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
command -v npm > /dev/null || need+=(npm)
command -v java > /dev/null || need+=(default-jre-headless)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0

echo "Installing from Debian: ${need[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo > /dev/null; then
    sudo=(sudo)
  else
    echo "Missing ${need[*]}: install them with apt-get as root, then run make test again." >&2
    exit 1
  fi
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" > /dev/null
