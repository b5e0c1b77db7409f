"""Starting and stopping the whole stack: embedded localstripe (test mode) and the app.

Used by `make run` (through `billing-admin run`) and by the end-to-end tests,
so both exercise the same production start-up path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

from billing_app.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def frontend_build_env() -> dict[str, str]:
    """Where Reflex finds bun and keeps its caches (set by the Makefile too; needed without it)."""
    bun = next(iter(sorted((PROJECT_ROOT / "tools" / "node_modules" / "@oven").glob("bun-linux-*/bin/bun"))), None)
    env = {
        "REFLEX_DIR": str(PROJECT_ROOT / ".cache" / "reflex"),
        "BUN_INSTALL_CACHE_DIR": str(PROJECT_ROOT / ".cache" / "bun"),
        "REFLEX_TELEMETRY_ENABLED": "false",
    }
    if bun is not None:
        env["REFLEX_BUN_PATH"] = str(bun)
    return env


def migrate(database_url: str) -> None:
    """Bring the database to the newest schema (Alembic `upgrade head`)."""
    config = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


def wait_for_http(url: str, timeout: float, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, whatever the status
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class Stack:
    """The processes of one deployment, started in order and stopped in reverse."""

    def __init__(self, settings: Settings, *, env: dict[str, str] | None = None, log_dir: Path | None = None):
        self.settings = settings
        self.env = {**frontend_build_env(), **os.environ, **(env or {})}
        self.log_dir = log_dir or settings.billing_data_dir / "logs"
        self.processes: list[tuple[str, subprocess.Popen]] = []

    @staticmethod
    def _ensure_port_free(port: int) -> None:
        # Otherwise the wait below would happily find another deployment on that port.
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise RuntimeError(f"port {port} is already in use: stop what runs there or choose another port")

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")
        process = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append((name, process))
        return process

    def start_localstripe(self) -> None:
        port = self.settings.localstripe_port
        self._ensure_port_free(port)
        process = self._spawn(
            "localstripe",
            [sys.executable, "-m", "billing_app.localstripe_server", "--port", str(port),
             "--store", str(self.settings.localstripe_store)],
        )
        wait_for_http(f"http://127.0.0.1:{port}/v1/customers", timeout=30, process=process)

    def start_app(self) -> None:
        port = str(self.settings.billing_port)
        self._ensure_port_free(self.settings.billing_port)
        process = self._spawn(
            "app",
            [str(VENV_BIN / "reflex"), "run", "--env", "prod", "--frontend-port", port, "--backend-port", port,
             "--loglevel", "warning"],
        )
        # The first start compiles and builds the frontend.
        wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=600, process=process)
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=120, process=process)

    def process(self, name: str) -> subprocess.Popen:
        return next(process for process_name, process in self.processes if process_name == name)

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process in reversed(self.processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def wait(self) -> int:
        """Block until a process dies (or Ctrl-C); return its exit code."""
        try:
            while True:
                for name, process in self.processes:
                    if process.poll() is not None:
                        print(f"{name} exited with code {process.returncode}; see {self.log_dir}/{name}.log")
                        return process.returncode or 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0
