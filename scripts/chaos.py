#!/usr/bin/env python3
"""Chaos acceptance run of "One road for stamping".

    .venv/bin/python scripts/chaos.py [--invoices 300] [--kills 30] [--concurrency 16]

Starts everything on loopback in a temporary directory: a throw-away PostgreSQL server (as in
scripts/with_postgres.py), an SMTP server (aiosmtpd, in this process) that keeps what it
receives, gunicorn (WEB_CONCURRENCY=2, gunicorn.conf.py) and `flask mail worker`. Migrates, loads
the demo merchant, picks tickets invoiceable today, then runs N customers at once through the
web flow (branch → RFC → ticket form → invoice page), about one in five pressing "Generar
factura" twice at once, while a killer thread SIGKILLs gunicorn workers, the gunicorn master
(restarted here) and the mail worker (restarted here). Afterwards: one `flask invoices reconcile
--older-than 0`, the outbox drained, and the database, the sandbox PAC's record and the SMTP
server's mailbox checked:

    lost, duplicated, stuck, folio gaps, stamped invoices not emailed, 5xx answers, double
    presses answered with different invoices, customers left without an answer

must all be 0; the exit status is 1 otherwise. Every process and the temporary directory are
removed at exit (--keep keeps the directory, with the logs, and says where). The developer's
instance/ directory is never used: every setting goes by environment.

Choices that differ from production defaults, to keep a run within minutes:
MAIL_LEASE_SECONDS=20 (--mail-lease; app default 120: a killed worker's messages wait that
long), MAIL_RETRY_SECONDS=2, `mail worker --interval 1 --reconcile-every 5`. Reconcile itself
keeps its ABANDONED_AFTER of 2 minutes, so a customer whose invoice was left "stamping" by a
killed process waits about that long on the 202 page (--wait bounds the polling; what still
waits then is left to the final reconcile and checked like the rest). When the gunicorn master
is killed its orphaned workers are SIGKILLed too, as systemd does with the shipped unit
(KillMode=mixed), then gunicorn is started again. Customers whose request died press again
(same form, same key) up to RETRY_ATTEMPTS times; --give-up makes a share of them close the
browser instead when their ticket POST dies (their invoice is then reconcile's to settle).
"""

from __future__ import annotations

import argparse
import atexit
import collections
import contextlib
import email
import email.policy
import html.parser
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]
from with_postgres import free_port, pg_bindir  # noqa: E402  (reuse its helpers)

VENV = ROOT / ".venv" / "bin"
SLUG = "demo"
RFC = "XOJI740919U48"
NOMBRE = "INGRID XODAR JIMENEZ"
CP, REGIMEN, USO, FORMA_PAGO = "76028", "612", "G03", "01"
INVOICE_PATH = re.compile(r"/facturar/factura/([A-Za-z0-9_-]+)$")
UUID_RE = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}", re.I)

# Per request: connect / read timeouts; a customer whose request died presses again, at most
# RETRY_ATTEMPTS times within RETRY_WINDOW seconds; a 5xx is retried at most RETRY_5XX times.
TIMEOUT = (5, 60)
RETRY_ATTEMPTS = 20
RETRY_WINDOW = 90.0
RETRY_5XX = 3
MIN_GAP = 1.5  # seconds between two kills

LOG_LOCK = threading.Lock()
T0 = time.monotonic()


def say(*parts) -> None:
    with LOG_LOCK:
        print(f"[{time.monotonic() - T0:7.1f}s]", *parts, flush=True)


# --- processes ----------------------------------------------------------------------------


class Procs:
    """Every process this script starts, each in a session (process group) of its own, so
    that cleanup kills the group (gunicorn's orphaned workers included) by its id."""

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.logs: list = []
        self.lock = threading.Lock()

    def start(self, argv, *, env, log: Path, name: str) -> subprocess.Popen:
        out = open(log, "ab")  # noqa: SIM115 - closed by kill_all
        out.write(f"\n===== {name} started {datetime.now(UTC).isoformat()} =====\n".encode())
        out.flush()
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        with self.lock:
            self.groups.append(proc.pid)
            self.logs.append(out)
        return proc

    def kill_all(self) -> None:
        with self.lock:
            groups, logs = list(self.groups), list(self.logs)
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        for out in logs:
            out.close()


def children(pid: int) -> list[int]:
    """Live child processes of `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


class Postgres:
    def __init__(self, base: Path) -> None:
        self.bindir = pg_bindir()
        self.dir = base / "pg"
        self.dir.mkdir()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as postgres
            user = pwd.getpwnam("postgres")
            os.chmod(base, 0o711)  # noqa: S103 - postgres may pass through, not list
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data = self.dir / "data"
        self.port = free_port()
        self.started = False

    def pg(self, *args, **kw):
        return subprocess.run([*self.as_user, *args], check=True, timeout=120, **kw)

    def start(self) -> str:
        self.pg(
            f"{self.bindir}/initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-instructions",
            stdout=subprocess.DEVNULL,
        )
        self.pg(
            f"{self.bindir}/pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {self.port} -k {self.dir} -c fsync=off -c full_page_writes=off "
            "-c synchronous_commit=off -c max_connections=300",
            "start",
            stdout=subprocess.DEVNULL,
        )
        self.started = True
        self.pg(
            f"{self.bindir}/createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "autofactura",
        )
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/autofactura"

    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/autofactura"

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                [
                    *self.as_user,
                    f"{self.bindir}/pg_ctl",
                    "-D",
                    str(self.data),
                    "-m",
                    "immediate",
                    "stop",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            )
            self.started = False


# --- SMTP sink ----------------------------------------------------------------------------


@dataclass
class Received:
    message_id: str
    to: str
    subject: str
    filenames: list[str]
    uuids: set[str]


class SmtpSink:
    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.port = free_port()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802
                try:
                    sink.keep(envelope.original_content or envelope.content)
                except Exception:  # noqa: BLE001 - a message we cannot parse is still kept
                    sink.keep_raw(envelope)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def keep(self, raw: bytes) -> None:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        names = [p.get_filename() or "" for p in msg.iter_attachments()]
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        uuids = {u.upper() for u in UUID_RE.findall(text + " ".join(names))}
        with self.lock:
            self.messages.append(
                Received(str(msg["Message-ID"]), str(msg["To"]), str(msg["Subject"]), names, uuids)
            )

    def keep_raw(self, envelope) -> None:
        with self.lock:
            self.messages.append(Received("?", ",".join(envelope.rcpt_tos), "?", [], set()))

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        with contextlib.suppress(Exception):  # already stopped, or never started
            self.controller.stop()


# --- HTML ---------------------------------------------------------------------------------


class FormParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.radios: dict[str, list[str]] = collections.defaultdict(list)
        self.csrf_header: str | None = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name"):
            if a.get("type") == "radio":
                self.radios[a["name"]].append(a.get("value") or "")
            else:
                self.inputs.setdefault(a["name"], a.get("value") or "")
        elif tag == "body" and a.get("hx-headers"):
            with contextlib.suppress(ValueError):
                self.csrf_header = json.loads(a["hx-headers"]).get("X-CSRFToken")
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def parse(text: str) -> FormParser:
    p = FormParser()
    p.feed(text)
    return p


def title_of(text: str) -> str:
    try:
        return " ".join(parse(text).title.split())[:100]
    except Exception:  # noqa: BLE001
        return "?"


# --- the run's shared record ----------------------------------------------------------------


@dataclass
class Customer:
    n: int
    branch_code: str
    branch_id: int
    order_number: str
    ticket_number: str
    total: str
    email: str
    double: bool
    ticket_id: int = 0
    acks: list[str] = field(default_factory=list)  # public ids of 303s / 200 pages
    answers: list[tuple[int, str]] = field(default_factory=list)  # (status, location) per press
    final_status: int | None = None
    page_uuid: str | None = None
    problem: str | None = None
    conn_errors: int = 0
    presses: int = 0
    impatient: bool = False  # closes the browser when the ticket POST dies (--give-up)
    gave_up: bool = False
    waited: float = 0.0  # longest time from an acknowledgement to the invoice page (200)


class Record:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.server_errors: list[str] = []
        self.unexpected: list[str] = []
        self.conn_errors = 0
        self.kills: list[str] = []
        self.unexpected_exits: list[str] = []
        self.done = 0

    def add(self, what: str, line: str) -> None:
        with self.lock:
            getattr(self, what).append(line)


# --- the services under test --------------------------------------------------------------


class Stack:
    def __init__(self, args, base: Path, procs: Procs, env: dict, record: Record) -> None:
        self.args, self.base, self.procs, self.env, self.record = args, base, procs, env, record
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.gunicorn: subprocess.Popen | None = None
        self.mail: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def flask(self, *args, timeout=600, check=True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(VENV / "flask"), "--app", "webapp.app", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"flask {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}"
            )
        return result

    def start_gunicorn(self) -> None:
        self.gunicorn = self.procs.start(
            [str(VENV / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"],
            env=self.env,
            log=self.base / "gunicorn.log",
            name="gunicorn",
        )

    def start_mail(self) -> None:
        self.mail = self.procs.start(
            [
                str(VENV / "flask"),
                "--app",
                "webapp.app",
                "mail",
                "worker",
                "--interval",
                "1",
                "--reconcile-every",
                str(self.args.reconcile_every),
            ],
            env=self.env,
            log=self.base / "mail-worker.log",
            name="mail worker",
        )

    def healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=3).status_code == 200
        except requests.RequestException:
            return False

    def wait_healthy(self, seconds: float = 90) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.healthy() and self.gunicorn and len(children(self.gunicorn.pid)) >= 1:
                return True
            time.sleep(0.25)
        return False

    def workers(self) -> list[int]:
        return children(self.gunicorn.pid) if self.gunicorn else []

    def restart_gunicorn(self, old: subprocess.Popen) -> str:
        """After the master died: what systemd does with the unit (deploy/
        autofactura-web.service, KillMode=mixed): the processes left in it, the orphaned
        workers, get SIGKILL (else they serve their kept-alive connections for up to
        graceful_timeout, holding the port); then a new gunicorn starts."""
        orphans = sorted(set(children(old.pid) + self._orphans_of(old)))
        for p in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in orphans):
            time.sleep(0.05)
        old.wait(timeout=10)
        self.start_gunicorn()
        return f"its workers {orphans} SIGKILLed too (systemd KillMode=mixed); restarted"

    def _orphans_of(self, old: subprocess.Popen) -> list[int]:
        """Processes of the old master's group (its workers, reparented once it died)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == old.pid:
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if int(fields[2]) == old.pid:  # pgrp
                found.append(int(entry))
        return found

    def ensure_up(self) -> None:
        """Restart what died without being killed by us (recorded as a problem)."""
        with self.lock:
            if self.gunicorn is not None and self.gunicorn.poll() is not None:
                self.record.add(
                    "unexpected_exits",
                    f"gunicorn master exited by itself: rc={self.gunicorn.returncode}",
                )
                self.restart_gunicorn(self.gunicorn)
            if self.mail is not None and self.mail.poll() is not None:
                self.record.add(
                    "unexpected_exits", f"mail worker exited by itself: rc={self.mail.returncode}"
                )
                self.start_mail()


# --- the killer ---------------------------------------------------------------------------


def killer(stack: Stack, args, record: Record, stop: threading.Event, rng: random.Random):
    k = args.kills
    n_master = max(1, round(0.15 * k)) if k >= 3 else 0
    n_mail = max(1, round(0.25 * k)) if k >= 2 else 0
    kinds = ["master"] * n_master + ["mail"] * n_mail
    kinds += ["worker"] * (k - len(kinds))
    rng.shuffle(kinds)
    # Spread over the run: the remaining time is estimated from the customers' pace so far,
    # and each kill comes after a random share of (remaining time / kills left), at least
    # MIN_GAP seconds after the previous one.
    started = time.monotonic()
    last = 0.0
    for i, kind in enumerate(kinds):
        elapsed = time.monotonic() - started
        done = record.done
        pace = elapsed / done if done >= 3 else 0.25
        left = max(1.0, (args.invoices - done) * pace)
        delay = rng.uniform(0.2, 1.6) * left / (k - i + 0.5)
        due = max(time.monotonic() + delay, last + MIN_GAP)
        while not stop.is_set() and time.monotonic() < due:
            stack.ensure_up()
            stop.wait(0.1)
        if stop.is_set():
            break
        with stack.lock:
            at = f"{time.monotonic() - T0:6.1f}s, {record.done} done"
            if kind == "worker":
                workers = stack.workers()
                if not workers:
                    kind = "master"
                else:
                    pid = rng.choice(workers)
                    os.kill(pid, signal.SIGKILL)
                    record.add("kills", f"#{i + 1:>2} [{at}] gunicorn worker {pid}")
            if kind == "master":
                old = stack.gunicorn
                os.kill(old.pid, signal.SIGKILL)
                then = stack.restart_gunicorn(old)
                record.add("kills", f"#{i + 1:>2} [{at}] gunicorn master {old.pid}: {then}")
            elif kind == "mail":
                old = stack.mail
                os.kill(old.pid, signal.SIGKILL)
                old.wait(timeout=10)
                record.add("kills", f"#{i + 1:>2} [{at}] mail worker {old.pid}: restarting")
                stack.start_mail()
        last = time.monotonic()
        say(record.kills[-1])


# --- a customer -----------------------------------------------------------------------------


class Browser:
    def __init__(
        self, stack: Stack, record: Record, cust: Customer, stop: threading.Event, wait: float
    ):
        self.url, self.record, self.c, self.stop = stack.url, record, cust, stop
        self.wait = wait

    def new_session(self) -> requests.Session:
        s = requests.Session()
        s.headers["User-Agent"] = f"chaos-customer/{self.c.n}"
        return s

    def request(self, stage, method, path, sess, data=None, give_up=False):
        """One press: retried like a user pressing again when the connection died, and
        (bounded) after a 5xx. None when it never got an answer (at once with `give_up`)."""
        first = time.monotonic()
        attempts = fives = 0
        while not self.stop.is_set():
            attempts += 1
            try:
                r = sess.request(
                    method, self.url + path, data=data, allow_redirects=False, timeout=TIMEOUT
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                with self.record.lock:
                    self.record.conn_errors += 1
                self.c.conn_errors += 1
                if isinstance(exc, requests.Timeout):
                    self.record.add(
                        "unexpected",
                        f"c{self.c.n} {stage}: {method} {path} timed "
                        f"out ({exc.__class__.__name__})",
                    )
                if give_up:
                    self.c.gave_up = True
                    return None
                if attempts >= RETRY_ATTEMPTS or time.monotonic() - first > RETRY_WINDOW:
                    return None
                time.sleep(min(0.3 * attempts, 3.0) + random.random() * 0.3)
                continue
            if r.status_code >= 500:
                fives += 1
                self.record.add(
                    "server_errors",
                    f"c{self.c.n} {stage}: {method} {path} -> {r.status_code} "
                    f"«{title_of(r.text)}» x-request-id={r.headers.get('X-Request-ID', '-')}",
                )
                if fives <= RETRY_5XX and time.monotonic() - first < RETRY_WINDOW:
                    time.sleep(1.0)
                    continue
            return r
        return None

    def fail(self, why: str) -> None:
        self.c.problem = why
        self.record.add("unexpected", f"c{self.c.n}: {why}")

    def run(self) -> None:
        c = self.c
        s = self.new_session()
        base = f"/facturar/{SLUG}/"
        r = self.request("branch page", "GET", base, s)
        if r is None or r.status_code != 200:
            return self.fail(f"branch page: {r.status_code if r else 'no answer'}")
        page = parse(r.text)
        token = page.inputs.get("csrf_token") or page.csrf_header
        if str(c.branch_id) not in page.radios.get("branch", []):
            return self.fail(f"branch {c.branch_id} not offered: {page.radios}")
        r = self.request("branch", "POST", base, s, {"csrf_token": token, "branch": c.branch_id})
        if r is None or r.status_code != 303 or not r.headers["Location"].endswith("/rfc"):
            return self.fail(f"branch POST: {r.status_code if r else 'no answer'}")
        r = self.request("rfc", "POST", base + "rfc", s, {"csrf_token": token, "rfc": RFC})
        if r is None or r.status_code != 303 or not r.headers["Location"].endswith("/ticket"):
            return self.fail(f"rfc POST: {r.status_code if r else 'no answer'}")
        r = self.request("ticket page", "GET", base + "ticket", s)
        if r is None or r.status_code != 200:
            return self.fail(f"ticket page: {r.status_code if r else 'no answer'}")
        page = parse(r.text)
        key = page.inputs.get("key")
        token = page.inputs.get("csrf_token") or page.csrf_header
        if not key or not token:
            return self.fail(f"ticket page without key or csrf_token: {sorted(page.inputs)}")
        data = {
            "csrf_token": token,
            "key": key,
            "order_number": c.order_number,
            "ticket_number": c.ticket_number,
            "total": c.total,
            "nombre": NOMBRE,
            "cp": CP,
            "regimen": REGIMEN,
            "uso_cfdi": USO,
            "email": c.email,
            "forma_pago": FORMA_PAGO,
            "action": "generate",
        }
        if not c.double:
            self.press_and_follow(s, data)
            return None
        # Double press: the same form posted twice at once from the same browser (same
        # cookies, same key); each answer followed with the cookies it came with.
        s2 = self.new_session()
        s2.cookies = s.cookies.copy()
        barrier = threading.Barrier(2, timeout=30)
        results: list = [None, None]

        def press(i, sess):
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
            results[i] = self.press_and_follow(sess, data)

        t = threading.Thread(target=press, args=(1, s2), daemon=True)
        t.start()
        press(0, s)
        t.join(timeout=RETRY_WINDOW * 2 + self.wait + 60)
        return None

    def press_and_follow(self, sess, data):
        c = self.c
        path = f"/facturar/{SLUG}/ticket"
        with self.record.lock:
            c.presses += 1
        r = self.request("ticket POST", "POST", path, sess, data, give_up=c.impatient)
        if r is None:
            with self.record.lock:
                c.answers.append((0, "no answer"))
            if not c.gave_up:
                self.fail("ticket POST: no answer after retries")
            return None
        location = r.headers.get("Location", "")
        with self.record.lock:
            c.answers.append((r.status_code, location))
        match = INVOICE_PATH.search(location) if r.status_code == 303 else None
        if match is None:
            self.fail(
                f"ticket POST answered {r.status_code} «{title_of(r.text)}» {_field_errors(r.text)}"
            )
            return None
        public_id = match.group(1)
        with self.record.lock:
            c.acks.append(public_id)
        # The invoice page: 202 "Estamos terminando su factura" while it is on its way.
        acked_at = time.monotonic()
        deadline = acked_at + self.wait
        r = None
        while not self.stop.is_set():
            r = self.request("invoice page", "GET", f"/facturar/factura/{public_id}", sess)
            if r is None:
                self.fail(f"invoice page {public_id}: no answer")
                return public_id
            if r.status_code != 202 or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        if r is None:
            return public_id
        with self.record.lock:
            c.waited = max(c.waited, time.monotonic() - acked_at)
            if c.final_status != 200:
                c.final_status = r.status_code
            if r.status_code == 200:
                found = UUID_RE.search(r.text)
                c.page_uuid = found.group(0).upper() if found else "?"
        if r.status_code == 202:
            self.record.add(
                "unexpected",
                f"c{c.n}: invoice {public_id} still 202 after {self.wait:.0f} s of waiting",
            )
        elif r.status_code != 200:
            self.fail(f"invoice page {public_id} -> {r.status_code} «{title_of(r.text)}»")
        return public_id


def _field_errors(text: str) -> str:
    errors = re.findall(r'class="[^"]*error[^"]*"[^>]*>([^<]{3,160})<', text)
    return "; ".join(dict.fromkeys(e.strip() for e in errors))[:300]


# --- setup helpers --------------------------------------------------------------------------


def pick_tickets(stack: Stack, db, n: int) -> tuple[list[dict], str]:
    from webapp.fiscal.window import in_window, parse_policy

    policy_text = db.execute(
        "SELECT window_policy FROM issuer WHERE slug = %s", (SLUG,)
    ).fetchone()[0]
    policy = parse_policy(policy_text)
    now = datetime.now(UTC)
    note = ""
    for attempt in range(2):
        out = stack.flask("demo", "tickets", "--count", str(max(3 * n, 100)), "--issuer", SLUG)
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        good = [r for r in rows if in_window(datetime.fromisoformat(r["sold_at"]), now, policy)]
        if len(good) >= n or attempt:
            break
        # Fewer invoiceable tickets than customers: move older open tickets into the window
        # (a throw-away database).
        missing = n - len(good)
        db.execute(
            "UPDATE ticket SET sold_at = now() at time zone 'utc' - interval '1 hour' "
            "WHERE id IN (SELECT id FROM ticket WHERE status = 'open' ORDER BY sold_at "
            "LIMIT %s)",
            (missing + 10,),
        )
        db.commit()
        note = f"{missing} tickets moved into the invoicing window ({policy_text})"
    return good[:n], f"window {policy_text}: {len(good)} open tickets invoiceable today" + (
        f"; {note}" if note else ""
    )


def environment(base: Path, database_url: str, smtp_port: int, args) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAC", "MAIL_", "DATABASE_", "SECURITY_", "KIOSK_", "GUNICORN"))
        and k
        not in (
            "SECRET_KEY",
            "DATA_KEY",
            "REDIS_URL",
            "BASE_URL",
            "PORT",
            "DEBUG",
            "FLASK_APP",
            "FLASK_DEBUG",
            "WEB_CONCURRENCY",
            "WEB_THREADS",
        )
    }
    port = free_port()
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_urlsafe(32),
        DATA_KEY=secrets.token_urlsafe(32),
        MAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
        MAIL_LEASE_SECONDS=str(args.mail_lease),
        MAIL_RETRY_SECONDS="2",
        PAC="sandbox",
        PAC_SANDBOX_DIR=str(base / "sandbox-pac"),
        RATELIMIT_ENABLED="0",
        PORT=str(port),
        BASE_URL=f"http://127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        PYTHONUNBUFFERED="1",
        LOG_LEVEL="INFO",
    )
    return env


def scan_logs(base: Path) -> list[str]:
    """Tracebacks and ERROR lines of the web and the mail worker, each kind once with a count."""
    seen: collections.Counter = collections.Counter()
    first: dict[str, str] = {}
    for name in ("gunicorn.log", "mail-worker.log"):
        path = base / name
        if not path.exists():
            continue
        lines = path.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                    j += 1
                last = lines[j] if j < len(lines) else "?"
                key = f"{name}: {last[:160]}"
                seen[key] += 1
                first.setdefault(key, "\n".join(lines[max(0, i - 2) : j + 1]))
            elif " ERROR " in line or "[CRITICAL]" in line:
                key = f"{name}: {re.sub(r'[0-9]+', 'N', line.split(' ERROR ', 1)[-1])[:160]}"
                seen[key] += 1
                first.setdefault(key, line)
    return [f"{count} × {key}" for key, count in seen.most_common()] + (
        ["", "first occurrence of each:"] + [first[k] for k, _ in seen.most_common()]
        if seen
        else []
    )


# --- checks ---------------------------------------------------------------------------------


def check(db, customers: list[Customer], record: Record, sink: SmtpSink, sandbox_db: Path):
    inv = {}
    for row in db.execute(
        "SELECT id, public_id, status, issuer_id, serie, folio, uuid, delivery_email, "
        "idempotency_key FROM invoice"
    ):
        inv[row[0]] = dict(
            zip(
                ("id", "public_id", "status", "issuer", "serie", "folio", "uuid", "email", "key"),
                row,
                strict=True,
            )
        )
    by_public = {i["public_id"]: i for i in inv.values()}
    links = db.execute("SELECT invoice_id, ticket_id, active FROM invoice_ticket").fetchall()
    held_by: dict[int, list[dict]] = collections.defaultdict(list)
    stamped_with: dict[int, list[dict]] = collections.defaultdict(list)
    for invoice_id, ticket_id, active in links:
        if active:
            held_by[ticket_id].append(inv[invoice_id])
        if inv[invoice_id]["status"] == "stamped":
            stamped_with[ticket_id].append(inv[invoice_id])
    statuses = collections.Counter(i["status"] for i in inv.values())
    out: dict[str, list[str]] = collections.OrderedDict(
        (k, [])
        for k in (
            "lost",
            "duplicated",
            "stuck",
            "folio gaps",
            "not emailed",
            "5xx answers",
            "double press mismatch",
            "not served",
        )
    )

    # lost: acknowledged, but no stamped invoice of theirs
    gave_up: collections.Counter = collections.Counter()
    for c in customers:
        mine = [i for i in stamped_with.get(c.ticket_id, []) if i["email"] == c.email]
        if c.acks and not mine:
            states = {
                p: (by_public[p]["status"] if p in by_public else "no such invoice") for p in c.acks
            }
            out["lost"].append(f"c{c.n} ticket {c.branch_code}/{c.ticket_number}: acks {states}")
        for p in set(c.acks):
            if (
                p in by_public
                and by_public[p]["status"] == "stamped"
                and c.page_uuid not in (None, "?", (by_public[p]["uuid"] or "").upper())
            ):
                out["lost"].append(
                    f"c{c.n}: page showed UUID {c.page_uuid}, invoice {p} has "
                    f"{by_public[p]['uuid']}"
                )
        if not c.acks and c.gave_up:
            gave_up[
                "stamped"
                if any(i["email"] == c.email for i in stamped_with.get(c.ticket_id, []))
                else "not stamped"
            ] += 1
        elif not c.acks:
            out["not served"].append(
                f"c{c.n} ticket {c.branch_code}/{c.ticket_number}: "
                f"{c.problem or 'no acknowledgement'} answers={c.answers}"
            )
    # duplicated
    for ticket_id, holders in held_by.items():
        if len(holders) > 1:
            out["duplicated"].append(
                f"ticket {ticket_id} held by {len(holders)} active invoices "
                f"{[h['id'] for h in holders]}"
            )
    for ticket_id, holders in stamped_with.items():
        if len(holders) > 1:
            out["duplicated"].append(
                f"ticket {ticket_id} in {len(holders)} stamped invoices "
                f"{[(h['id'], h['uuid']) for h in holders]}"
            )
    uuids = collections.Counter(i["uuid"] for i in inv.values() if i["uuid"])
    out["duplicated"] += [f"UUID {u} on {n} invoices" for u, n in uuids.items() if n > 1]
    pac_stamps = 0
    if sandbox_db.exists():
        con = sqlite3.connect(sandbox_db)
        try:
            pac = [r[0].upper() for r in con.execute("SELECT uuid FROM stamp")]
        finally:
            con.close()
        pac_stamps = len(pac)
        recorded = {(i["uuid"] or "").upper() for i in inv.values() if i["status"] == "stamped"}
        orphans = [u for u in pac if u not in recorded]
        out["duplicated"] += [
            f"the PAC stamped {u}, which no stamped invoice records (a valid "
            "CFDI at SAT the merchant does not know)"
            for u in orphans
        ]
    # stuck
    out["stuck"] = [
        f"invoice {i['id']} {i['serie']}-{i['folio']} in {i['status']}"
        for i in inv.values()
        if i["status"] in ("draft", "signed", "stamping")
    ]
    # folio gaps: per issuer+serie, the folios of non-failed invoices are 1..max
    series: dict[tuple, dict[int, list[str]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    for i in inv.values():
        series[(i["issuer"], i["serie"])][i["folio"]].append(i["status"])
    for (issuer, serie), folios in series.items():
        used = {f for f, st in folios.items() if any(s != "failed" for s in st)}
        for f, st in folios.items():
            if len(st) > 1:
                out["duplicated"].append(f"folio {serie}-{f} of issuer {issuer} on {len(st)} rows")
        top = max(used, default=0)
        for f in range(1, top + 1):
            if f not in used:
                why = (
                    "held by a failed invoice (not reused yet)"
                    if f in folios
                    else "no invoice has it"
                )
                out["folio gaps"].append(f"issuer {issuer} serie {serie}: folio {f} missing, {why}")
    # emailed: outbox row sent to that address carrying the UUID, and received by SMTP
    mails = db.execute(
        "SELECT m.id, m.message_id, m.to_addrs, m.status, m.attempts, m.last_error, "
        "string_agg(a.filename, ' ') FROM mail_message m LEFT JOIN mail_attachment a ON "
        "a.message_id = m.id GROUP BY m.id"
    ).fetchall()
    mail_status = collections.Counter(m[3] for m in mails)
    by_uuid: dict[str, list] = collections.defaultdict(list)
    for m in mails:
        for u in {u.upper() for u in UUID_RE.findall(m[6] or "")}:
            by_uuid[u].append(m)
    with sink.lock:
        received = list(sink.messages)
    got = collections.Counter(r.message_id for r in received)
    queued_twice = 0
    for i in inv.values():
        if i["status"] != "stamped" or not i["email"]:
            continue
        u = (i["uuid"] or "").upper()
        rows = [m for m in by_uuid.get(u, []) if i["email"] in (m[2] or "").split(",")]
        if len(rows) > 1:
            queued_twice += 1
        sent = [m for m in rows if m[3] == "sent"]
        if not sent:
            out["not emailed"].append(
                f"invoice {i['id']} {i['serie']}-{i['folio']} {u} to {i['email']}: outbox "
                f"{[(m[0], m[3], m[4], m[5]) for m in rows] or 'no row'}"
            )
        elif not any(got[m[1]] for m in sent):
            out["not emailed"].append(
                f"invoice {i['id']} {u}: outbox says sent "
                f"{[m[1] for m in sent]} but the SMTP server never got it"
            )
    out["5xx answers"] = list(record.server_errors)
    for c in customers:
        if not c.double:
            continue
        # A press that got no answer because its customer gave up (--give-up) is no answer
        # to compare; any other missing answer is a mismatch (and reported above).
        answers = [a for a in c.answers if not (c.gave_up and a[0] == 0)]
        ids = {
            INVOICE_PATH.search(loc).group(1)
            if INVOICE_PATH.search(loc or "")
            else f"<{status} {loc}>"
            for status, loc in answers
        }
        if len(ids) > 1 or (not c.gave_up and len(answers) != 2):
            out["double press mismatch"].append(f"c{c.n}: answers {c.answers}")
    facts = {
        "invoices by status": dict(statuses),
        "mail by status": dict(mail_status),
        "SMTP messages received": len(received),
        "distinct Message-IDs received": len(got),
        "received more than once (same Message-ID, allowed)": sum(1 for n in got.values() if n > 1),
        "invoices queued as 2+ different emails": queued_twice,
        "sandbox PAC stamps": pac_stamps,
    }
    if gave_up:
        facts["customers who gave up after a dead ticket POST (their invoice)"] = dict(gave_up)
    return out, facts


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--invoices", type=int, default=300)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--double-press", type=float, default=0.2, help="share of double presses")
    ap.add_argument(
        "--give-up",
        type=float,
        default=0.0,
        help="share of customers who do not press again when their ticket POST dies",
    )
    ap.add_argument(
        "--wait", type=float, default=150.0, help="seconds a customer polls a 202 invoice page"
    )
    ap.add_argument("--reconcile-every", type=float, default=5.0)
    ap.add_argument(
        "--mail-lease",
        type=float,
        default=20.0,
        help="MAIL_LEASE_SECONDS (default of the app: 120)",
    )
    ap.add_argument("--drain-seconds", type=float, default=240.0)
    ap.add_argument(
        "--time-limit",
        type=float,
        default=1200.0,
        help="customers still running after this many seconds are stopped",
    )
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)

    instance_before = sorted(os.listdir(ROOT / "instance")) if (ROOT / "instance").exists() else []
    base = Path(tempfile.mkdtemp(prefix="autofactura-chaos-"))
    procs = Procs()
    pg = Postgres(base)
    sink = SmtpSink()
    stop = threading.Event()
    done_cleanup = threading.Event()

    def cleanup() -> None:
        if done_cleanup.is_set():
            return
        done_cleanup.set()
        stop.set()
        procs.kill_all()
        sink.stop()
        try:
            pg.stop()
        except Exception:  # noqa: BLE001
            traceback.print_exc()
        if args.keep:
            print(f"kept {base}", flush=True)
        else:
            shutil.rmtree(base, ignore_errors=True)

    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: sys.exit(130))
    record = Record()
    try:
        import psycopg

        say(f"seed {seed}; temp dir {base}")
        database_url = pg.start()
        sink.start()
        env = environment(base, database_url, sink.port, args)
        stack = Stack(args, base, procs, env, record)
        say(f"PostgreSQL on 127.0.0.1:{pg.port}, SMTP on 127.0.0.1:{sink.port}, web on {stack.url}")
        stack.flask("db", "upgrade")
        say("migrated; loading demo data")
        say(stack.flask("demo", "load").stdout.strip().splitlines()[0])
        db = psycopg.connect(pg.dsn(), autocommit=False)
        tickets, window_note = pick_tickets(stack, db, args.invoices)
        say(window_note)
        if len(tickets) < args.invoices:
            say(f"only {len(tickets)} invoiceable tickets: running {len(tickets)} customers")
        branch_ids = dict(
            db.execute(
                "SELECT b.code, b.id FROM branch b JOIN issuer i ON "
                "i.id = b.issuer_id WHERE i.slug = %s",
                (SLUG,),
            ).fetchall()
        )
        run_id = secrets.token_hex(3)
        customers = []
        for n, t in enumerate(tickets, 1):
            c = Customer(
                n=n,
                branch_code=t["branch_code"],
                branch_id=branch_ids[t["branch_code"]],
                order_number=t["order_number"],
                ticket_number=t["ticket_number"],
                total=t["total"],
                email=f"c{n}-{run_id}@example.com",
                double=rng.random() < args.double_press,
                impatient=rng.random() < args.give_up,
            )
            c.ticket_id = db.execute(
                "SELECT id FROM ticket WHERE branch_id = %s AND ticket_number = %s",
                (c.branch_id, c.ticket_number),
            ).fetchone()[0]
            customers.append(c)
        db.commit()

        stack.start_gunicorn()
        stack.start_mail()
        if not stack.wait_healthy(120):
            raise RuntimeError("gunicorn did not answer /healthz within 120 s")
        say(
            f"gunicorn up (workers {stack.workers()}), mail worker {stack.mail.pid}; "
            f"{len(customers)} customers ({sum(c.double for c in customers)} double presses), "
            f"concurrency {args.concurrency}, {args.kills} kills"
        )

        kill_thread = threading.Thread(
            target=killer, args=(stack, args, record, stop, rng), daemon=True
        )
        started = time.monotonic()
        kill_thread.start()

        def serve(c: Customer) -> None:
            try:
                Browser(stack, record, c, stop, args.wait).run()
            except Exception as exc:  # noqa: BLE001 - a bug of this script, not the app
                c.problem = f"script error {exc!r}"
                record.add("unexpected", f"c{c.n}: script error\n{traceback.format_exc()}")
            finally:
                with record.lock:
                    record.done += 1
                    done = record.done
                if done % max(1, len(customers) // 10) == 0:
                    say(f"{done}/{len(customers)} customers done")

        pool = ThreadPoolExecutor(max_workers=args.concurrency)
        futures = [pool.submit(serve, c) for c in customers]
        deadline = started + args.time_limit
        for f in futures:
            left = deadline - time.monotonic()
            try:
                f.result(timeout=max(left, 0.1))
            except Exception:  # noqa: BLE001 - time limit
                say("time limit reached: stopping the customers")
                stop.set()
                break
        pool.shutdown(wait=True, cancel_futures=True)
        customers_seconds = time.monotonic() - started
        stop.set()
        kill_thread.join(timeout=120)
        say(f"customers finished in {customers_seconds:.0f} s; {len(record.kills)} kill lines")

        # Everything up, one reconcile, then the outbox drained.
        stack.ensure_up()
        if not stack.wait_healthy(120):
            raise RuntimeError("gunicorn is not healthy after the run")
        if stack.mail.poll() is not None:
            stack.start_mail()
        result = stack.flask("invoices", "reconcile", "--older-than", "0", check=False)
        reconcile_out = result.stdout.strip() or result.stderr.strip()[-500:]
        say(f"reconcile (rc={result.returncode}): {reconcile_out}")
        drain_deadline = time.monotonic() + args.drain_seconds
        drained = False
        while not drained and time.monotonic() < drain_deadline:
            db.rollback()
            waiting = db.execute(
                "SELECT count(*) FROM mail_message WHERE status IN ('pending', 'sending')"
            ).fetchone()[0]
            drained = waiting == 0
            if not drained:
                stack.ensure_up()
                time.sleep(1)
        db.rollback()
        time.sleep(1)  # the SMTP server's bookkeeping of the last message
        say("outbox drained" if drained else f"outbox NOT drained in {args.drain_seconds:.0f} s")
        results, facts = check(
            db, customers, record, sink, base / "sandbox-pac" / "sandbox-pac.sqlite3"
        )
        db.close()
        log_findings = scan_logs(base)
        instance_after = (
            sorted(os.listdir(ROOT / "instance")) if (ROOT / "instance").exists() else []
        )

        # --- summary ---
        kinds = collections.Counter(
            "master" if "master" in k else "mail" if "mail worker" in k else "worker"
            for k in record.kills
            if k.startswith("#")
        )
        acked = sum(1 for c in customers if c.acks)
        waits = sorted(c.waited for c in customers if c.acks)
        print()
        print("=" * 78)
        print(
            f"CHAOS RUN  invoices={len(customers)} kills={args.kills} "
            f"concurrency={args.concurrency} seed={seed}"
        )
        print(
            f"customers: {customers_seconds:.0f} s, acknowledged {acked}/{len(customers)}, "
            f"double presses {sum(c.double for c in customers)}, connection errors retried "
            f"{record.conn_errors}, total wall {time.monotonic() - T0:.0f} s"
        )
        print(
            f"kills done: {sum(kinds.values())}/{args.kills} (gunicorn workers "
            f"{kinds['worker']}, gunicorn master {kinds['master']}, mail worker "
            f"{kinds['mail']})"
        )
        if waits:
            print(
                f"wait from acknowledgement to the invoice page: median "
                f"{waits[len(waits) // 2]:.1f} s, max {waits[-1]:.0f} s, over 10 s: "
                f"{sum(w > 10 for w in waits)} customers"
            )
        print(f"reconcile: {reconcile_out}")
        for k, v in facts.items():
            print(f"{k}: {v}")
        print("-" * 78)
        failed = False
        for name, items in results.items():
            flag = "OK  " if not items else "FAIL"
            failed |= bool(items)
            print(f"{flag} {name:<24} {len(items)}")
        for name, items in results.items():
            for line in items[:15]:
                print(f"   {name}: {line}")
            if len(items) > 15:
                print(f"   {name}: … {len(items) - 15} more")
        if record.unexpected:
            print(f"other unexpected answers ({len(record.unexpected)}):")
            for line in record.unexpected[:15]:
                print("  ", line)
        if record.unexpected_exits:
            print("processes that exited by themselves:", *record.unexpected_exits, sep="\n   ")
        if instance_after != instance_before:
            print(f"WARNING instance/ changed: {instance_before} -> {instance_after}")
            failed = True
        print("=" * 78)
        print("RESULT:", "FAIL" if failed else "PASS")
        if log_findings:
            print("\nerrors in the logs of web and mail worker:")
            print("\n".join(log_findings[:80]))
        print("\nkills:")
        print("\n".join(record.kills))
        return 1 if failed else 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
