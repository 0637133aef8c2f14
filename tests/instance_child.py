"""Run by tests/test_two_instances.py in a process of its own: one instance of the app, its
settings read from the environment as in production, served by werkzeug (threaded) on a free
loopback port until the process is ended. Once it listens, the port is written to PORT_FILE
(complete or not at all). Passwords are hashed with the suite's cheap argon2 parameters
(tests/conftest.py), so that twenty sign-ins at once do not take a loaded machine.

Usage: python tests/instance_child.py PORT_FILE
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from argon2 import PasswordHasher  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from webapp.app import create_app  # noqa: E402
from webapp.security import passwords  # noqa: E402

CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def main() -> None:
    port_file = Path(sys.argv[1])
    passwords._hasher = CHEAP_ARGON2
    passwords._DUMMY_HASH = CHEAP_ARGON2.hash("autofactura: no such account")
    server = make_server("127.0.0.1", 0, create_app(), threaded=True)
    aside = port_file.with_name(f".{port_file.name}.{os.getpid()}")
    aside.write_text(str(server.server_port))
    aside.rename(port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
