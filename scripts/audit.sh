#!/usr/bin/env bash
# make audit: the fast audits of the test suite (axe-core and the Nu Html Checker, in
# tests/test_audits.py), then Lighthouse (mobile profile) on the home page, the ticket step of the
# invoicing flow and the invoice panel, served from a throw-away database.
#
# Lighthouse opens one URL and cannot walk the flow or sign in; a small script does both over
# HTTP first and hands Lighthouse the session cookie (--extra-headers). Thresholds (issue #6):
# performance >= 95, accessibility = 100, best practices >= 95.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
LIGHTHOUSE=audit/node_modules/.bin/lighthouse
[ -x "$LIGHTHOUSE" ] || { echo "Missing $LIGHTHOUSE: run npm ci --prefix audit" >&2; exit 1; }

echo "== axe-core and the Nu Html Checker =="
"$BIN/python" -m pytest -q -p no:cacheprovider tests/test_audits.py

echo "== Lighthouse =="
tmp=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

PORT=$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export PORT BASE_URL="$BASE" DATABASE_URL="sqlite:///$tmp/audit.db" MAIL_URL="file://$tmp/mail" \
  PAC_SANDBOX_DIR="$tmp/pac" SECRET_KEY="audit-$RANDOM$RANDOM"
FLASK=("$BIN/flask" --app webapp.app)
"${FLASK[@]}" db upgrade > /dev/null
"${FLASK[@]}" demo load > /dev/null
"${FLASK[@]}" demo invoices --count 40 > /dev/null 2>&1  # the demo customer and a full panel
"${FLASK[@]}" run --host 127.0.0.1 --port "$PORT" > "$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do curl -fs "$BASE/healthz" > /dev/null && break; sleep 0.2; done
curl -fs "$BASE/healthz" > /dev/null || { cat "$tmp/server.log" >&2; exit 1; }

# The Cookie header of a visitor at the ticket step, and of the signed-in demo customer (the
# captcha of the sign-in page is answered from its token, as tests/test_accounts.py does).
"$BIN/python" - "$BASE" > "$tmp/cookies" <<'PY'
import re
import sys
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from webapp.app import create_app
from webapp.security.captcha import store
from webapp.demo.invoices import CUSTOMER_EMAIL, CUSTOMER_PASSWORD, CUSTOMER_RFC

base = sys.argv[1]


def visitor():
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def get(path):
        with opener.open(base + path) as r:
            return r.geturl(), r.read().decode()

    def post(path, **data):
        html = get(path)[1]
        data["csrf_token"] = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
        if captcha := re.search(r'name="captcha_token"[^>]*value="([^"]+)"', html):
            with create_app().test_request_context():
                answer = store.challenge_for(captcha.group(1)).answer
            data.update(captcha_token=captcha.group(1), captcha=answer)
        body = urllib.parse.urlencode(data).encode()
        with opener.open(base + path, body) as r:  # the 303 is followed
            return r.geturl(), html

    def cookie():
        return "; ".join(f"{c.name}={c.value}" for c in jar)

    return get, post, cookie


get, post, cookie = visitor()
branch = re.search(r'name="branch"[^>]*value="(\d+)"|<option value="(\d+)"', get("/facturar/demo/")[1])
post("/facturar/demo/", branch=branch.group(1) or branch.group(2), rfc=CUSTOMER_RFC)
url, _ = get("/facturar/demo/ticket")  # the branch and the RFC are the flow's now
assert url.endswith("/facturar/demo/ticket"), url
print(cookie())

get, post, cookie = visitor()
url, _ = post("/cuenta/entrar", identifier=CUSTOMER_EMAIL, password=CUSTOMER_PASSWORD)
assert url.endswith("/cuenta/"), url
print(cookie())
PY
flow_cookie=$(sed -n 1p "$tmp/cookies")
account_cookie=$(sed -n 2p "$tmp/cookies")

lighthouse() {  # name path cookie
  local headers='{}'
  [ -n "$3" ] && headers=$("$BIN/python" -c 'import json, sys; print(json.dumps({"Cookie": sys.argv[1]}))' "$3")
  CHROME_PATH=/usr/bin/chromium "$LIGHTHOUSE" "$BASE$2" --quiet \
    --only-categories=performance,accessibility,best-practices \
    --chrome-flags="--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run" \
    --extra-headers="$headers" --output=json --output-path="$tmp/$1.json"
}
lighthouse home / ""
lighthouse ticket /facturar/demo/ticket "$flow_cookie"
lighthouse panel /facturas/ "$account_cookie"

"$BIN/python" - "$tmp" <<'PY'
import json
import sys
from pathlib import Path

MINIMUM = {"performance": 95, "accessibility": 100, "best-practices": 95}
failed = False
print(f"{'page':<8} {'URL':<40} " + " ".join(f"{c:>15}" for c in MINIMUM))
for name in ("home", "ticket", "panel"):
    report = json.loads((Path(sys.argv[1]) / f"{name}.json").read_text())
    cells = []
    for category, minimum in MINIMUM.items():
        score = round(100 * (report["categories"][category]["score"] or 0))
        ok = score >= minimum
        failed |= not ok
        cells.append(f"{score:>3} (>= {minimum:>3}) {'ok' if ok else '!!'}")
    url = report["finalDisplayedUrl"].split("/", 3)[-1]
    print(f"{name:<8} /{url:<39} " + " ".join(f"{c:>15}" for c in cells))
    for category in MINIMUM:
        for ref in report["categories"][category]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref["weight"] and audit["score"] is not None and audit["score"] < 0.9:
                print(f"    {category}: {audit['id']}: {audit['title']} ({audit.get('displayValue', '')})")
sys.exit(1 if failed else 0)
PY
