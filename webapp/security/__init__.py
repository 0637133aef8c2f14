"""Who may do what, and how that is proved: passwords (argon2id), signed single-use tokens,
the security preset (policy), lockout, secret questions, the captcha, the audit trail, and
the one sign-in service that customers, staff and any later console go through (signin.py).

Importing this package loads no routes; web.py is the Flask edge for headers and redirect
targets, bound by the app factory.
"""
