"""Attacks on the machine the app runs on: other local users, terminal onlookers, leftovers.

- Files: the data directory (0700) and the database, secrets, logs and emulator store in it
  (0600) are readable by this user only, whatever the umask.
- `billing-admin set-password` in a terminal asks at a hidden prompt: the password never
  appears on the terminal (it used to read it with echo on, or refuse the terminal).
- `billing-admin run` / runner.Stack: a second SIGTERM while stopping used to interrupt the
  stop and orphan the app and the emulator (holding their ports); now no child survives,
  whether the stack is signalled twice or killed outright.
- A port in use is one line naming the setting to change, exit 1, no traceback.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from billing_app.runner import PROJECT_ROOT

# `python -m` from the project root: this checkout's code (the venv's billing-admin script may be
# another's).
CLI = [sys.executable, "-m", "billing_app.cli"]
PASSWORD = "terminal secret 12345"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def deployment(tmp_path) -> dict[str, str]:
    """The environment of a deployment of its own: a data directory not created yet, free ports."""
    data = tmp_path / "data"
    return {
        **os.environ,
        "BILLING_DATA_DIR": str(data),
        "DATABASE_URL": f"sqlite:///{data}/billing.db",
        "BILLING_PORT": str(_free_port()),
        "LOCALSTRIPE_PORT": str(_free_port()),
    }


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=PROJECT_ROOT,
        umask=0o022,
        check=False,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_data_dir_database_and_secrets_are_private(deployment):
    assert _cli(deployment, "migrate").returncode == 0
    assert (
        _cli(
            deployment, "create-account", "acme", "--name", "Acme", "--admin-email", "a@acme.test"
        ).returncode
        == 0
    )
    assert _cli(deployment, "launch-url", "acme").returncode == 0  # generates the launch secret
    data = Path(deployment["BILLING_DATA_DIR"])
    assert _mode(data) == 0o700
    files = [path for path in data.iterdir() if path.is_file()]
    assert {p.name for p in files} >= {"billing.db", ".launch_secret"}
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_an_existing_permissive_data_dir_and_database_are_tightened(deployment):
    data = Path(deployment["BILLING_DATA_DIR"])
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "billing.db").touch(mode=0o644)
    assert _cli(deployment, "migrate").returncode == 0
    assert (_mode(data), _mode(data / "billing.db")) == (0o700, 0o600)


def test_logs_and_emulator_store_are_private(deployment):
    script = textwrap.dedent("""
        import json, os, urllib.request
        from billing_app.runner import Stack
        from billing_app.settings import get_settings
        settings = get_settings()
        with Stack(settings) as stack:
            stack.start_localstripe()
            request = urllib.request.Request(
                f"http://127.0.0.1:{settings.localstripe_port}/v1/customers",
                data=b"email=a@acme.test", headers={"Authorization": "Bearer sk_test_x"},
            )
            urllib.request.urlopen(request).read()  # a write: the emulator saves its store
    """)
    subprocess.run(
        [sys.executable, "-c", script],
        env=deployment,
        cwd=PROJECT_ROOT,
        check=True,
        timeout=60,
        umask=0o022,
    )
    data = Path(deployment["BILLING_DATA_DIR"])
    assert _mode(data / "logs") == 0o700
    assert _mode(data / "logs" / "localstripe.log") == 0o600
    assert _mode(data / "localstripe.pickle") == 0o600


# set-password in a terminal ------------------------------------------------------------------


def _in_a_terminal(env: dict[str, str], args: list[str], typed: list[str]) -> tuple[int, str]:
    """Run the CLI with a pty as its terminal, typing each of `typed` after a prompt; return (exit
    code, screen)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*CLI, *args],
        env=env,
        cwd=PROJECT_ROOT,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        # A controlling terminal can only be set in the child (no threads run here).
        start_new_session=True,
        preexec_fn=lambda: _make_controlling_tty(slave),  # noqa: PLW1509
    )
    os.close(slave)
    screen, pending = b"", list(typed)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            screen += chunk
            if pending and screen.endswith(b": "):  # a prompt waiting for input
                os.write(master, pending.pop(0).encode() + b"\n")
        elif process.poll() is not None:
            break
    os.close(master)
    return process.wait(timeout=30), screen.decode(errors="replace")


def _make_controlling_tty(fd: int) -> None:
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSCTTY, 0)


@pytest.fixture
def account_env(deployment) -> dict[str, str]:
    assert _cli(deployment, "migrate").returncode == 0
    assert (
        _cli(
            deployment, "create-account", "acme", "--name", "Acme", "--admin-email", "a@acme.test"
        ).returncode
        == 0
    )
    return deployment


@pytest.mark.parametrize("flag", [[], ["--password-stdin"]], ids=["prompt", "password-stdin"])
def test_set_password_in_a_terminal_hides_what_is_typed(account_env, flag):
    code, screen = _in_a_terminal(
        account_env, ["set-password", "acme", *flag], [PASSWORD, PASSWORD]
    )
    assert code == 0, screen
    assert PASSWORD not in screen and "password set for acme" in screen


def test_set_password_in_a_terminal_needs_the_same_password_twice(account_env):
    code, screen = _in_a_terminal(account_env, ["set-password", "acme"], [PASSWORD, PASSWORD + "x"])
    assert code == 1 and "the two passwords differ" in screen and PASSWORD not in screen


def test_set_password_from_a_pipe_still_works_and_says_nothing_of_it(account_env):
    done = _cli(account_env, "set-password", "acme", "--password-stdin", stdin=PASSWORD + "\n")
    assert done.returncode == 0 and PASSWORD not in done.stdout + done.stderr


# Stopping the stack --------------------------------------------------------------------------

# Stands in for the app: slow to stop (ignores SIGTERM, as a busy frontend build may) with a
# helper process of its own in its group (as Granian's workers are).
_STUBBORN = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    helper = subprocess.Popen(["sleep", "600"])
    print(os.getpid(), helper.pid, flush=True)
    time.sleep(600)
""")
_RUN = textwrap.dedent(f"""
    import signal, sys
    from billing_app.runner import Stack
    from billing_app.settings import get_settings
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # as `billing-admin run`
    with Stack(get_settings(), stop_timeout=3) as stack:
        stack.start_localstripe()
        stack.spawn("app", [sys.executable, "-c", {_STUBBORN!r}])
        print("ready", stack.process("localstripe").pid, flush=True)
        stack.wait()
""")


def _start_stack(deployment) -> tuple[subprocess.Popen, list[int]]:
    runner = subprocess.Popen(
        [sys.executable, "-c", _RUN],
        env=deployment,
        cwd=PROJECT_ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    ready, localstripe = runner.stdout.readline().split()
    assert ready == "ready", runner.stderr.read()
    log = Path(deployment["BILLING_DATA_DIR"]) / "logs" / "app.log"
    deadline = time.monotonic() + 30
    while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    app, helper = map(int, log.read_text().split())
    return runner, [int(localstripe), app, helper]


def _survivors(pids: list[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    while True:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_second_sigterm_while_stopping_orphans_nothing(deployment):
    runner, children = _start_stack(deployment)
    try:
        os.killpg(runner.pid, signal.SIGTERM)  # as `kill -TERM -<pgid>` of `make run`
        time.sleep(0.3)
        os.killpg(runner.pid, signal.SIGTERM)
        runner.wait(timeout=30)
        assert _survivors(children, within=10) == []
        assert "Traceback" not in runner.stderr.read()
        # The ports are free again: the next `make run` starts.
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", int(deployment["LOCALSTRIPE_PORT"]))) != 0
    finally:
        _kill_all(children)


def test_children_die_with_a_killed_runner(deployment):
    runner, children = _start_stack(deployment)
    try:
        runner.kill()  # SIGKILL: no handler, no stop()
        runner.wait(timeout=10)
        assert _survivors(children, within=20) == []
    finally:
        _kill_all(children)


# Ports in use --------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["LOCALSTRIPE_PORT", "BILLING_PORT"])
def test_a_port_in_use_is_one_line_naming_the_setting(deployment, setting):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(deployment[setting])))
        taken.listen()
        done = _cli(deployment, "run")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "Traceback" not in done.stderr
    assert f"port {deployment[setting]} is already in use" in done.stderr and setting in done.stderr
