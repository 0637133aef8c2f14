"""`make run` starts the app once: `flask demo serve` migrates, loads the demo data, archives
and serves, with the mail worker in a thread of the same process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.flows import PATIENCE, RFC, free_port, wait_until

pytestmark = pytest.mark.run_once  # the same on both databases: run once

ROOT = Path(__file__).resolve().parent.parent


def test_the_run_target_starts_one_flask_process():
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    assert recipe.count("$(FLASK)") == 1, recipe
    assert "demo serve" in recipe


def test_demo_serve_prepares_and_serves_in_one_process(tmp_path):
    port = free_port()
    mail = tmp_path / "mail"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "MAIL_URL": f"file://{mail}",
        "SECRET_KEY": "make-run-test",
        "DEV_MAILBOX": "1",
    }
    env.pop("TEST_DATABASE_URL", None)
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "webapp.app"]
        + ["demo", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        try:
            return requests.get(f"{base}/healthz", timeout=PATIENCE).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(up, "flask demo serve to answer /healthz")
        # Migrated and loaded: the demo issuer's branch step answers.
        assert requests.get(f"{base}/facturar/demo/", timeout=PATIENCE).status_code == 200
        # ... and the demo telecom provider's (with its bills: the billing run ran).
        assert requests.get(f"{base}/servicios/telcel-demo/", timeout=PATIENCE).status_code == 200
        # The mail worker runs in the same process: a registration's email is delivered.
        with requests.Session() as browser:
            page = browser.get(f"{base}/cuenta/registro", timeout=PATIENCE).text
            token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
            answer = browser.post(
                f"{base}/cuenta/registro",
                data={
                    "rfc": RFC,
                    "email": "nueva@example.com",
                    "email_confirm": "nueva@example.com",
                    "csrf_token": token,
                },
                allow_redirects=False,
                timeout=PATIENCE,
            )
            assert answer.status_code == 303, answer.text[:500]
        wait_until(
            lambda: mail.is_dir() and any(mail.glob("*.eml")), "the worker to deliver the email"
        )
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C stops the server and the worker
        server.wait(PATIENCE)
        log.close()
    output = (tmp_path / "serve.log").read_text()
    assert "Created demo issuer 'demo'" in output
    assert "3000 bills of the last 6 months" in output
    assert "mail worker stopped" in output
