"""gunicorn settings for production: `gunicorn wsgi:app`, run from the project directory,
reads this file. Every value comes from the environment, the same one the app reads
(/etc/autofactura/env under deploy/autofactura-web.service); see README.md, "Production".

GUNICORN_CMD_ARGS (gunicorn's own variable) overrides anything here, e.g.
GUNICORN_CMD_ARGS="--bind 0.0.0.0:8000" when the TLS proxy runs on another machine.
"""

import os

# Loopback: the TLS proxy (nginx, Caddy) on this machine is the only client.
bind = f"127.0.0.1:{int(os.environ.get('PORT', '5000'))}"

# Processes (WEB_CONCURRENCY, the usual name, default 2) times threads each: the requests served
# at once. Threads, because a request that stamps waits on the PAC for up to
# PAC_TIMEOUT_SECONDS; with one thread per process, two slow stamps would stall every page.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))

# A request may call the PAC twice (SW's login then the stamp; a cancellation then the new
# stamp), each call bounded by PAC_TIMEOUT_SECONDS: the worker timeout stays above both plus a
# margin, so gunicorn never kills a request the app would have finished. A killed stamping is
# safe (reconcile settles it), only slower for the customer. The TLS proxy's read timeout must
# be longer still (nginx: proxy_read_timeout; see README.md).
PAC_TIMEOUT_SECONDS = float(os.environ.get("PAC_TIMEOUT_SECONDS", "30"))
timeout = int(2 * PAC_TIMEOUT_SECONDS + 30)
# On stop or reload (SIGTERM, SIGHUP), requests in flight get as long to finish. Keep the
# systemd unit's TimeoutStopSec above it.
graceful_timeout = timeout
# Connections from the proxy are kept open a little between requests.
keepalive = 5

# X-Forwarded-Proto (https) is believed only from these addresses: the proxy's. gunicorn's own
# default, spelled out; set FORWARDED_ALLOW_IPS to the proxy's address when it is elsewhere.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Logs to stderr: journald under systemd. The app writes one access line per request itself,
# with its request id and without the query string (webapp/observability.py): no second one.
accesslog = None
errorlog = "-"
# Recycle a worker after this many requests (with jitter, so they do not restart together):
# bounds any slow growth of memory.
max_requests = 2000
max_requests_jitter = 200

# systemd starts, stops and reloads it (deploy/autofactura-web.service): no control socket in
# the service user's home (gunicorn 25.1 and newer make one there by default).
control_socket_disable = True
