#!/usr/bin/env python3
"""Run a command against a throw-away PostgreSQL server.

initdb into a temporary directory, start the server with `pg_ctl` on a free loopback port,
create a database, export TEST_DATABASE_URL for the command, and stop and delete the server
afterwards, whatever the command's outcome. As root, the server runs as the `postgres` user
(initdb refuses root).

    python scripts/with_postgres.py -- pytest -q
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile


def pg_bindir() -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if candidates:
        return candidates[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(os.path.realpath(initdb))
    sys.exit("PostgreSQL server binaries not found (apt-get install postgresql).")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str]) -> int:
    if "--" in argv:
        argv = argv[argv.index("--") + 1 :]
    if not argv:
        sys.exit(__doc__)
    bindir = pg_bindir()
    as_user: list[str] = []
    base = tempfile.mkdtemp(prefix="autofactura-pg-")
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = os.path.join(base, "data"), os.path.join(base, "server.log")
    port = free_port()

    def pg(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *args], check=True, **kw)

    try:
        pg(
            f"{bindir}/initdb",
            "-D",
            data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-instructions",
            stdout=subprocess.DEVNULL,
        )
        pg(
            f"{bindir}/pg_ctl",
            "-D",
            data,
            "-l",
            log,
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off -c full_page_writes=off "
            "-c synchronous_commit=off -c max_connections=200",
            "start",
            stdout=subprocess.DEVNULL,
        )
        pg(
            f"{bindir}/createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "autofactura_test",
        )
        version = subprocess.run(
            [f"{bindir}/postgres", "--version"], capture_output=True, text=True
        ).stdout.strip()
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/autofactura_test"
        print(
            f"== Temporary PostgreSQL server: {version} at 127.0.0.1:{port} "
            "(stopped and removed afterwards) ==",
            flush=True,
        )
        env = dict(os.environ, TEST_DATABASE_URL=url)
        return subprocess.run(argv, env=env).returncode
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
