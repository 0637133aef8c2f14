"""Extensions, created here once and bound to the app with init_app."""

from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from webapp.db import Database

babel = Babel()
csrf = CSRFProtect()
db = Database()
login_manager = LoginManager()
