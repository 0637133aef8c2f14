"""Two instances of the app, each a process of its own, share one database and one Redis
(issue #13, point 7): an attack spread over both ends in the lock, and the per-address limit
counts the requests of both. With the limits in each process's memory the limit is per
instance (what Redis is for); with Redis unreachable the limits still hold, per process.

Each instance sits behind a proxy (TRUSTED_PROXIES=1): the test plays the proxy, writing the
client's address into X-Forwarded-For, so twenty attackers can come from twenty addresses.

Redis is a real redis-server (scripts/ensure_system_packages.sh installs it): without it these
tests fail, unless AUTOFACTURA_ALLOW_SKIP is set, when they are skipped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import pytest
import redis
import requests

from tests.flows import PASSWORD, PATIENCE, RECEPTOR, RFC, free_port, verified_account, wait_until

REDIS_SERVER = Path("/usr/bin/redis-server")
CHILD = Path(__file__).with_name("instance_child.py")
PARALLEL = 20
IP_LIMIT = 4  # sign-in attempts per address an hour, over all instances when shared
INSTANCE_ENVIRONMENT = {
    "TRUSTED_PROXIES": "1",
    "RATELIMIT_ENABLED": "1",
    "RATELIMIT_SIGNIN_IP": f"{IP_LIMIT}/hour",
    "RATELIMIT_SIGNIN_ACCOUNT": "1000/hour",  # the lock, not this limit, stops the attack
    "SECURITY_PRESET": "seed",  # locks at the 3rd failure
    "SECURITY_CAPTCHA_AFTER_FAILURES": "0",  # these tests count failures, not captchas
}
UNKNOWN_RFCS = ["CACX7605101P8", "EKU9003173C9", "GODE561231GR8", "MISC491214B86"]
_addresses = count(1)


def new_address() -> str:
    """A client address no other test of this module uses (limits outlive a test in Redis)."""
    n = next(_addresses)
    return f"198.51.{n // 250}.{n % 250 + 1}"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A Redis server of this module's own on a free loopback port, nothing written to disk."""
    if not REDIS_SERVER.exists():
        message = f"{REDIS_SERVER} is missing: run scripts/ensure_system_packages.sh"
        if os.environ.get("AUTOFACTURA_ALLOW_SKIP"):
            pytest.skip(message)
        pytest.fail(message)
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=PATIENCE)

    def answers() -> bool:
        assert server.poll() is None, f"redis-server exited with {server.returncode}"
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    try:
        wait_until(answers, f"redis-server to answer PING on port {port}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        server.terminate()
        server.wait(PATIENCE)


@dataclass
class Instance:
    url: str
    process: subprocess.Popen
    log: Path

    def post(
        self,
        browser: requests.Session,
        address: str,
        identifier: str,
        password: str,
        before: Callable[[], object] = lambda: None,
    ) -> int:
        """Sign in as a browser does (the form, then its CSRF token) from `address`, calling
        `before` between the two; the answer's status."""
        page = browser.get(f"{self.url}/cuenta/entrar", timeout=PATIENCE)
        assert page.status_code == 200, self.diagnosis()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
        before()
        answer = browser.post(
            f"{self.url}/cuenta/entrar",
            data={"identifier": identifier, "password": password, "csrf_token": token},
            headers={"X-Forwarded-For": address},  # as the proxy in front writes it
            allow_redirects=False,
            timeout=PATIENCE,
        )
        return answer.status_code

    def attempt(self, address: str, identifier: str, password: str = "incorrecta") -> int:
        with requests.Session() as browser:
            return self.post(browser, address, identifier, password)

    def diagnosis(self) -> str:
        return f"{self.url}: {self.log.read_text()[-3000:]}"


class Instances:
    """Pairs of instances on the test database, started once per module and storage."""

    def __init__(self, database_url: str, sandbox_pac_dir: str, directory: Path) -> None:
        self.environment = {
            "SECRET_KEY": "test-secret-key",
            "DATA_KEY": "test-data-key",
            "DATABASE_URL": database_url,
            "MAIL_URL": f"file://{directory / 'mail'}",
            "BASE_URL": "http://localhost",
            "PAC_SANDBOX_DIR": sandbox_pac_dir,
            **INSTANCE_ENVIRONMENT,
        }
        self.directory = directory
        self.started: dict[str | None, list[Instance]] = {}
        self.numbers = count(1)
        self._processes: list[subprocess.Popen] = []  # every one started, to stop them all

    def pair(self, redis_url: str | None) -> list[Instance]:
        if redis_url not in self.started:
            self.started[redis_url] = [self._start(redis_url) for _ in range(2)]
            for instance in self.started[redis_url]:
                self._wait_healthy(instance)
        return self.started[redis_url]

    def _start(self, redis_url: str | None) -> Instance:
        environment = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        environment |= self.environment | ({"REDIS_URL": redis_url} if redis_url else {})
        n = next(self.numbers)
        port_file, log = self.directory / f"port-{n}", self.directory / f"instance-{n}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, str(CHILD), str(port_file)],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def listening() -> bool:
            assert process.poll() is None, f"instance exited: {log.read_text()[-3000:]}"
            return port_file.exists()

        instance = Instance("", process, log)
        self._processes.append(process)
        wait_until(listening, "an instance of the app to listen")
        instance.url = f"http://127.0.0.1:{port_file.read_text()}"
        return instance

    @staticmethod
    def _wait_healthy(instance: Instance) -> None:
        def healthy() -> bool:
            assert instance.process.poll() is None, instance.diagnosis()
            try:
                return requests.get(f"{instance.url}/healthz", timeout=PATIENCE).ok
            except requests.ConnectionError:
                return False

        wait_until(healthy, f"{instance.url}/healthz to answer 200")

    def stop(self) -> None:
        for process in self._processes:
            process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(PATIENCE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def instances(database_url, sandbox_pac_dir, tmp_path_factory) -> Iterator[Instances]:
    started = Instances(database_url, sandbox_pac_dir, tmp_path_factory.mktemp("instances"))
    yield started
    started.stop()


@pytest.fixture(params=["redis", "memory"])
def storage(request) -> str | None:
    """Where the instances keep their rate limits: one Redis, or each its own memory."""
    return request.getfixturevalue("redis_url") if request.param == "redis" else None


def test_an_attack_spread_over_two_instances_ends_in_the_lock(app, instances, storage):
    """Twenty wrong passwords at once from twenty addresses, half to each instance: the lock
    (counted by the shared database) holds on both, for the right password too."""
    with app.app_context():
        verified_account(RFC, RECEPTOR["email"])
    pair = instances.pair(storage)
    attackers = [(pair[i % 2], new_address()) for i in range(PARALLEL)]
    start = threading.Barrier(PARALLEL, timeout=2 * PATIENCE)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def attack(instance: Instance, address: str) -> None:
        try:
            with requests.Session() as browser:
                # Each attacker's form first (the barrier waits for them all), then all post.
                statuses.append(
                    instance.post(browser, address, RFC, "incorrecta", before=start.wait)
                )
        except BaseException as exc:  # noqa: BLE001 (reported by the test below)
            errors.append(exc)
            start.abort()

    threads = [threading.Thread(target=attack, args=attacker) for attacker in attackers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * PATIENCE)
    assert not errors, (errors, pair[0].diagnosis(), pair[1].diagnosis())
    assert len(statuses) == PARALLEL
    assert set(statuses) <= {401, 423}, statuses
    for instance in pair:  # the account is locked on both: the right password is refused
        assert instance.attempt(new_address(), RFC, PASSWORD) == 423


def test_the_limit_per_address_counts_the_requests_of_both_instances(instances, storage):
    """IP_LIMIT attempts from one address, alternating between the instances: with Redis the
    next one is refused on either; with each instance's memory each has seen only half."""
    pair = instances.pair(storage)
    address = new_address()
    for i, rfc in enumerate(UNKNOWN_RFCS[:IP_LIMIT]):
        assert pair[i % 2].attempt(address, rfc) == 401
    if storage:
        assert pair[0].attempt(address, RFC) == 429
        assert pair[1].attempt(address, RFC) == 429
    else:
        assert pair[0].attempt(address, RFC) == 401
        assert pair[1].attempt(address, RFC) == 401
    assert pair[0].attempt(new_address(), RFC) == 401  # another address is not refused


def test_with_redis_unreachable_the_limits_hold_per_instance(instances):
    """REDIS_URL names a port nobody listens on: sign-in still answers (never a 500), and each
    process counts in its own memory until Redis is back."""
    pair = instances.pair(f"redis://127.0.0.1:{free_port()}/0")
    address = new_address()
    for rfc in UNKNOWN_RFCS[:IP_LIMIT]:
        assert pair[0].attempt(address, rfc) == 401, pair[0].diagnosis()
    assert pair[0].attempt(address, RFC) == 429
    assert pair[1].attempt(address, RFC) == 401
