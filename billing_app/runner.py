"""Starting and stopping the whole stack: embedded localstripe (test mode), the app and, in
development, the demo connector host.

Used by `make run` (through `billing-admin run`) and by the end-to-end tests,
so both exercise the same production start-up path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from alembic import command
from alembic.config import Config as AlembicConfig

from billing_app.errors import ErrorCode, UserError
from billing_app.files import open_private_log, private_dir
from billing_app.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def frontend_build_env() -> dict[str, str]:
    """Where Reflex finds bun and keeps its caches (set by the Makefile too; needed without it)."""
    bun = next(
        iter(
            sorted((PROJECT_ROOT / "tools" / "node_modules" / "@oven").glob("bun-linux-*/bin/bun"))
        ),
        None,
    )
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
            raise RuntimeError(
                f"process exited with code {process.returncode} before {url} answered"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers, whatever the status
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


class PortInUse(UserError):
    """A port the stack needs is taken; the message names the setting that moves it."""

    code = ErrorCode.PORT_IN_USE


def ensure_port_free(port: int, setting: str) -> None:
    # Otherwise the wait for the new process would happily find another deployment on that port.
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise PortInUse(
                f"port {port} is already in use: stop what runs there or set {setting} to a free "
                "port"
            )


class Stack:
    """The processes of one deployment, started in order and stopped in reverse.

    Each process leads a process group of its own (so Ctrl-C in the terminal reaches only
    us, and stopping a group stops its workers and helpers too). Nothing outlives the stack:
    `stop` ignores further SIGINT/SIGTERM until every group is gone (a second Ctrl-C or
    `kill` used to interrupt it and orphan the app), and a reaper process (billing_app.reaper)
    stops the groups if this process dies without stopping them, even by SIGKILL.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        stop_timeout: float = 20.0,
    ):
        self.settings = settings
        self.env = {**frontend_build_env(), **os.environ, **(env or {})}
        self.log_dir = log_dir or settings.billing_data_dir / "logs"
        self.stop_timeout = stop_timeout
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self._reaper: subprocess.Popen | None = None

    def _tell_reaper(self, line: str) -> None:
        if self._reaper is None:
            self._reaper = subprocess.Popen(
                [sys.executable, "-m", "billing_app.reaper"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        self._reaper.stdin.write(line + "\n")
        self._reaper.stdin.flush()

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        """Start `args` as the stack's process `name`, leading a new process group; output to
        `<log_dir>/<name>.log`."""
        private_dir(self.log_dir)
        with open_private_log(self.log_dir / f"{name}.log") as log:
            process = subprocess.Popen(
                args,
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((name, process))
        self._tell_reaper(f"+{process.pid}")
        return process

    def start_localstripe(self) -> None:
        port = self.settings.localstripe_port
        ensure_port_free(port, "LOCALSTRIPE_PORT")
        process = self.spawn(
            "localstripe",
            [
                sys.executable,
                "-m",
                "billing_app.localstripe_server",
                "--port",
                str(port),
                "--store",
                str(self.settings.localstripe_store),
            ],
        )
        wait_for_http(f"http://127.0.0.1:{port}/v1/customers", timeout=30, process=process)

    def start_app(self) -> None:
        port = str(self.settings.billing_port)
        ensure_port_free(self.settings.billing_port, "BILLING_PORT")
        process = self.spawn(
            "app",
            [
                str(VENV_BIN / "reflex"),
                "run",
                "--env",
                "prod",
                "--frontend-port",
                port,
                "--backend-port",
                port,
                "--loglevel",
                "warning",
            ],
        )
        # The first start compiles and builds the frontend.
        wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=600, process=process)
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=120, process=process)

    def start_demo_host(self) -> None:
        """The demo connector host (billing_app/demo_host.py), for development."""
        port = self.settings.billing_demo_host_port
        ensure_port_free(port, "BILLING_DEMO_HOST_PORT")
        process = self.spawn(
            "demo-host", [sys.executable, "-m", "billing_app.demo_host", "--port", str(port)]
        )
        wait_for_http(f"http://127.0.0.1:{port}/", timeout=30, process=process)

    def process(self, name: str) -> subprocess.Popen:
        return next(process for process_name, process in self.processes if process_name == name)

    def stop(self) -> None:
        """SIGTERM each group, wait up to `stop_timeout` for its leader, then SIGKILL what is left
        of it."""
        ignored = _ignore_stop_signals()
        try:
            for _name, process in reversed(self.processes):
                _signal_group(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            for _name, process in reversed(self.processes):
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
                # Also the group's other members (workers, build tools) that outlived their leader.
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
                self._tell_reaper(f"-{process.pid}")
            self.processes.clear()
            if self._reaper is not None:
                self._reaper.stdin.close()
                self._reaper.wait()
                self._reaper = None
        finally:
            for signum, handler in ignored.items():
                signal.signal(signum, handler)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def check_ports(self) -> None:
        """Refuse (PortInUse) before anything starts when a port the stack needs is taken."""
        if self.settings.test_mode:
            ensure_port_free(self.settings.localstripe_port, "LOCALSTRIPE_PORT")
        ensure_port_free(self.settings.billing_port, "BILLING_PORT")
        if self.settings.billing_env == "development":
            ensure_port_free(self.settings.billing_demo_host_port, "BILLING_DEMO_HOST_PORT")

    def wait(self) -> int:
        """Block until a process dies (or Ctrl-C); return its exit code."""
        try:
            while True:
                for name, process in self.processes:
                    if process.poll() is not None:
                        print(
                            f"{name} exited with code {process.returncode}; see "
                            f"{self.log_dir}/{name}.log"
                        )
                        return process.returncode or 1
                time.sleep(0.5)
        except KeyboardInterrupt:
            return 0


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _ignore_stop_signals() -> dict[int, object]:
    """Ignore SIGINT and SIGTERM (main thread only, where handlers live); return the handlers to
    restore."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {
        signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)
    }
