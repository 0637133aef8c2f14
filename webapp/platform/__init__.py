"""The platform operator's business with its clients, the issuers (issue #17, seed 003):
products, subscriptions and stamp credits, privacy notices, renewal quotes, payment slips and
their confirmation, onboarding. Flask-free: the operator console (webapp.operator) and the
back office (webapp.admin) call it."""
