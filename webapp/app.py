"""The application factory: settings, extensions, blueprints and commands bound to one app."""

from __future__ import annotations

from flask import Flask

from webapp.config import INSTANCE, ROOT, check, from_environment


def create_app(config: dict | None = None) -> Flask:
    """Build the app from the environment, with `config` overriding any setting."""
    app = Flask(
        __name__,
        instance_path=str(INSTANCE),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    settings = from_environment()
    settings.update(config or {})
    check(settings)
    app.config.from_mapping(settings)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(ROOT / "translations"))
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "es_MX")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "America/Mexico_City")

    from webapp import assets, errors, i18n, observability, templating, wiring
    from webapp.extensions import COMPRESS_DEFAULTS, compress, csrf, db, limiter, login_manager
    from webapp.mail.outbox import MESSAGE_DOMAIN, message_domain
    from webapp.security import web as security
    from webapp.security.policy import from_settings

    app.config["SECURITY_POLICY"] = from_settings(app.config)
    observability.init_app(app)
    db.init_app(app, info={MESSAGE_DOMAIN: message_domain(app.config)})
    login_manager.init_app(app)
    limiter.init_app(app)
    login_manager.login_view = "accounts.sign_in"
    login_manager.login_message = None
    # Sessions are kept on the server (webapp.security.sessions), and nothing asks for a
    # "fresh" login: Flask-Login's "basic" protection would only write `_fresh` into every
    # visitor's cookie, rewriting it on their second request.
    login_manager.session_protection = None
    csrf.init_app(app)
    i18n.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    templating.init_app(app)
    assets.init_app(app)
    wiring.init_app(app)
    for key, value in COMPRESS_DEFAULTS.items():
        app.config.setdefault(key, value)
    compress.init_app(app)

    from webapp.accounts import bp as accounts_bp
    from webapp.accounts import session as _account_sessions  # noqa: F401 (user loader)
    from webapp.admin import bp as admin_bp
    from webapp.api import bp as api_bp
    from webapp.branding import bp as branding_bp
    from webapp.captcha import bp as captcha_bp
    from webapp.cli import register_commands
    from webapp.devmail import bp as devmail_bp
    from webapp.devsms import bp as devsms_bp
    from webapp.invoicing import bp as invoicing_bp
    from webapp.kiosk import bp as kiosk_bp
    from webapp.main import bp as main_bp
    from webapp.myservices import bp as myservices_bp
    from webapp.operator import bp as operator_bp
    from webapp.panel import bp as panel_bp
    from webapp.profile import bp as profile_bp
    from webapp.sandbox_sri import bp as sandbox_sri_bp

    app.register_blueprint(kiosk_bp)  # first: its request hook runs before the others'
    app.register_blueprint(main_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(branding_bp)
    app.register_blueprint(captcha_bp)
    app.register_blueprint(devmail_bp)
    app.register_blueprint(devsms_bp)
    app.register_blueprint(invoicing_bp)
    app.register_blueprint(myservices_bp)
    app.register_blueprint(operator_bp)
    app.register_blueprint(panel_bp)
    app.register_blueprint(profile_bp)
    app.register_blueprint(sandbox_sri_bp)
    register_commands(app)
    return app
