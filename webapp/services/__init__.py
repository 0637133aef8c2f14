"""Services: the roads every caller takes (stamping), above the domain packages and below
the blueprints. Flask-free: the app binds them in webapp.wiring."""
