"""Run by tests/test_crash_recovery.py in a process of its own: invoice one demo ticket
through the stamping service, and SIGKILL this process at STAGE:

- draft: right after the reservation is committed;
- signed: right after the signed document is committed;
- stamping: right after "stamping" is committed, before the PAC is called;
- answered: right after the PAC stamped it, before the stamp is recorded.

An Ecuadorian ticket (TICKET_JSON has "country": "EC") goes to the sandbox SRI instead, with
one more stage:

- received: right after SRI answered RECIBIDA, before its authorisation is asked;
- answered: right after SRI answered AUTORIZADO, before it is recorded.

Usage: python tests/crash_child.py CONFIG_JSON STAGE TICKET_JSON
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from webapp.app import create_app  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.fiscal.receptor import Receptor  # noqa: E402
from webapp.issuing import issue  # noqa: E402
from webapp.models import Branch, InvoiceStatus  # noqa: E402
from webapp.wiring import stamping  # noqa: E402


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    config, stage, ticket = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    reserve, advance = issue.reserve, issue._advance
    if stage == "draft":
        issue.reserve = lambda *a, **k: (reserve(*a, **k), die())[0]
    elif stage in ("signed", "stamping"):
        target = InvoiceStatus(stage)

        def advance_then_die(session, invoice, old, new, **values):
            won = advance(session, invoice, old, new, **values)
            if new is target:
                die()
            return won

        issue._advance = advance_then_die
    app = create_app(config)
    with app.test_request_context():
        service = stamping()
        ecuador = ticket.get("country") == "EC"
        if ecuador:
            sri = service.providers.sri()
            if stage == "received":
                send = sri.send
                sri.send = lambda xml: (send(xml), die())[0]
            elif stage == "answered":
                authorise = sri.authorise
                sri.authorise = lambda key: (authorise(key), die())[0]
        elif stage == "answered":
            pac = service.providers.deployment()
            real = pac.stamp
            pac.stamp = lambda xml: (real(xml), die())[0]
        branch = db.session.get(Branch, ticket["branch_id"])
        if ecuador:
            receptor = Receptor(ticket["rfc"], ticket["nombre"], "", "", "", "05", "Quito")
        else:
            receptor = Receptor(ticket["rfc"], ticket["nombre"], "76028", "612", "G03")
        forma = "19" if ecuador else "01"
        request = issue.Request(
            branch.id, [ticket["id"]], receptor, forma, ticket["email"], f"crash-{stage}"
        )
        outcome = service.issue(db.session, request, branch.issuer, datetime.now(UTC))
    print(f"survived: {outcome.result}")


if __name__ == "__main__":
    main()
