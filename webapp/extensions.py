"""Extensions, created here once and bound to the app with init_app."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from webapp.db import Database

babel = Babel()
csrf = CSRFProtect()
db = Database()
login_manager = LoginManager()
# Storage from RATELIMIT_STORAGE_URI: memory by default, Redis when REDIS_URL is set.
limiter = Limiter(key_func=get_remote_address)
