"""Every `flask` command of the app."""

from flask import Flask


def register_commands(app: Flask) -> None:
    from webapp.admin.cli import staff_cli
    from webapp.billing.cli import billing_cli
    from webapp.datakey import data_key_cli
    from webapp.demo.cli import demo_cli
    from webapp.invoicing.cli import invoices_cli
    from webapp.kiosk.cli import kiosk_cli
    from webapp.mail.cli import mail_cli
    from webapp.migrate import db_cli
    from webapp.operator.cli import issuers_cli
    from webapp.sms.cli import sms_cli

    groups = (
        db_cli,
        mail_cli,
        sms_cli,
        demo_cli,
        invoices_cli,
        kiosk_cli,
        staff_cli,
        data_key_cli,
        billing_cli,
        issuers_cli,
    )
    for group in groups:
        app.cli.add_command(group)
