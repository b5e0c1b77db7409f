"""Integration fixtures: a real localstripe (our launcher) on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from billing_app.services.billing_actions import BillingService
from billing_app.settings import TEST_MODE_SECRET_KEY, Settings
from billing_app.stripe.client import StripeClient

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Emulator:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> httpx.Response:
        """Read the emulator directly, to check what the gateway did."""
        return httpx.get(
            self.base + path, timeout=5, headers={"Authorization": f"Bearer {TEST_MODE_SECRET_KEY}"}
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def run_emulator(*store_args: str, port: int | None = None) -> Iterator[Emulator]:
    """Start `python -m billing_app.localstripe_server`, wait until it answers, stop it after."""
    port = port or free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # Output to a file, not a pipe: nobody reads it, and a full pipe would block it.
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "billing_app.localstripe_server",
                "--port",
                str(port),
                *store_args,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        emulator = Emulator(port, process)
        try:
            _wait_until_answering(emulator, log)
            yield emulator
        finally:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_answering(emulator: Emulator, log: IO[bytes]) -> None:
    deadline = time.monotonic() + 15
    while True:
        if emulator.process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"localstripe exited: {log.read().decode()[-2000:]}")
        try:
            if emulator.get("/v1/customers?limit=1").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("localstripe did not answer within 15 s")
        time.sleep(0.05)


def settings_for(port: int, data_dir: Path, **overrides: object) -> Settings:
    # Explicit values win over the environment and no .env is read: a developer's
    # STRIPE_SECRET_KEY can never turn these tests into real Stripe calls.
    values: dict[str, object] = {
        "_env_file": None,
        "stripe_secret_key": None,
        "stripe_publishable_key": None,
        "stripe_webhook_secret": None,
        "database_url": f"sqlite:///{data_dir}/test.db",
        "localstripe_port": port,
        "billing_data_dir": data_dir,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(name="run_emulator", scope="session")
def _run_emulator_fixture() -> Callable[..., AbstractContextManager[Emulator]]:
    """`with run_emulator("--store", path) as emulator:` for tests needing their own."""
    return run_emulator


@pytest.fixture(name="settings_for", scope="session")
def _settings_for_fixture() -> Callable[..., Settings]:
    """`settings_for(port, data_dir, **overrides)`: test-mode Settings, env ignored."""
    return settings_for


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with run_emulator("--in-memory") as running:
        yield running


@pytest.fixture(scope="session")
def settings(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings_for(emulator.port, tmp_path_factory.mktemp("billing-data"))


@pytest.fixture(scope="session")
def app_database() -> str:
    """The run's database (what `session_scope` and the CLI use), migrated."""
    from billing_app.runner import migrate
    from billing_app.settings import get_settings

    url = get_settings().database_url
    migrate(url)
    return url


@pytest.fixture(scope="session")
def service(settings: Settings, app_database: str) -> BillingService:
    """The money flows and the reconcile pass against the emulator, on the run's database."""
    return BillingService(StripeClient(settings), settings)
