"""Attack: a production deployment that lost its settings must not quietly run in test mode.

Without Stripe keys the app would start the embedded emulator, generate its own launch and
webhook secrets and use SQLite, with only a badge telling. With BILLING_ENV=production every
way of starting the app refuses instead: exit 1, one line per missing or unsafe setting.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "billing-admin")
# Everything else (keys, URLs, secrets) is stripped from the environment.
KEPT_VARIABLES = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "REFLEX_DIR",
    "REFLEX_BUN_PATH",
    "BUN_INSTALL_CACHE_DIR",
    "REFLEX_TELEMETRY_ENABLED",
    "NPM_CONFIG_REGISTRY",
)
LOCALSTRIPE_PORT = 8791
PRODUCTION_VARIABLES = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "BILLING_LAUNCH_SECRET",
    "DATABASE_URL",
    "BILLING_PUBLIC_URL",
)
COMPLETE_PRODUCTION = {
    "STRIPE_SECRET_KEY": "sk_live_attack",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_attack",
    "STRIPE_WEBHOOK_SECRET": "whsec_attack",
    "BILLING_LAUNCH_SECRET": "k" * 32,
    "DATABASE_URL": "postgresql+psycopg://billing@127.0.0.1:9/billing",
    "BILLING_PUBLIC_URL": "https://billing.example.com",
}


def stripped_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name in KEPT_VARIABLES}
    return (
        env
        | {
            "BILLING_DATA_DIR": str(tmp_path / "data"),
            "BILLING_PORT": "3791",
            "LOCALSTRIPE_PORT": str(LOCALSTRIPE_PORT),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        | variables
    )


def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run until it exits; one still running after `timeout` s (it started the stack) is stopped."""
    process = subprocess.Popen(
        args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # `billing-admin run` stops what it started
        stdout, stderr = process.communicate(timeout=60)
        pytest.fail(
            f"still running after {timeout} s instead of refusing to start:\n{stdout}\n{stderr}"
        )
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def assert_refused(result: subprocess.CompletedProcess, variables: tuple[str, ...]) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    for name in variables:
        assert sum(name in line for line in lines) == 1, (name, lines)
    assert len(lines) == len(variables), lines


def localstripe_listening() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", LOCALSTRIPE_PORT)) == 0


def test_run_in_production_without_settings_refuses_to_start(tmp_path: Path):
    # The working directory has no .env: only the stripped environment counts.
    result = run(
        [CLI, "run"], stripped_env(tmp_path, BILLING_ENV="production"), cwd=tmp_path, timeout=30
    )
    assert_refused(result, PRODUCTION_VARIABLES)
    assert not localstripe_listening()
    assert not (tmp_path / "data" / ".launch_secret").exists()


@pytest.mark.parametrize(
    "command", [["migrate"], ["seed-demo"], ["launch-url", "demo"], ["api-key", "demo"]]
)
def test_other_commands_refuse_the_same_settings(tmp_path: Path, command: list[str]):
    result = run([CLI, *command], stripped_env(tmp_path, BILLING_ENV="production"), cwd=tmp_path)
    assert_refused(result, PRODUCTION_VARIABLES)


def test_the_app_import_path_refuses_too(tmp_path: Path):
    """`reflex run` and each of its workers load rxconfig.py, then billing_app/billing_app.py."""
    for module in ("rxconfig", "billing_app.billing_app"):
        result = run(
            [sys.executable, "-c", f"import {module}"],
            stripped_env(tmp_path, BILLING_ENV="production"),
            cwd=tmp_path,
        )
        assert_refused(result, PRODUCTION_VARIABLES)


def test_several_workers_without_redis_are_refused(tmp_path: Path):
    env = stripped_env(
        tmp_path, BILLING_ENV="production", GRANIAN_WORKERS="3", **COMPLETE_PRODUCTION
    )
    assert_refused(run([CLI, "migrate"], env, cwd=tmp_path), ("REFLEX_REDIS_URL",))


@pytest.mark.parametrize(
    "ancestors", ["*", "https:", "'self' http://connector.example.com", "http:"]
)
def test_wide_or_plain_http_frame_ancestors_are_refused_in_production(
    tmp_path: Path, ancestors: str
):
    env = stripped_env(
        tmp_path, BILLING_ENV="production", BILLING_FRAME_ANCESTORS=ancestors, **COMPLETE_PRODUCTION
    )
    assert_refused(run([CLI, "migrate"], env, cwd=tmp_path), ("BILLING_FRAME_ANCESTORS",))


@pytest.mark.parametrize(
    "settings",
    [
        {"DATABASE_URL": "sqlite:///data/billing.db"},
        {"BILLING_PUBLIC_URL": "http://billing.example.com"},
        {"BILLING_LAUNCH_SECRET": "k" * 31},
    ],
)
def test_unsafe_values_are_refused_in_production(tmp_path: Path, settings: dict[str, str]):
    env = stripped_env(tmp_path, BILLING_ENV="production", **(COMPLETE_PRODUCTION | settings))
    assert_refused(run([CLI, "migrate"], env, cwd=tmp_path), tuple(settings))


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_an_empty_or_short_launch_secret_is_refused_in_development_too(tmp_path: Path, secret: str):
    env = stripped_env(tmp_path, BILLING_LAUNCH_SECRET=secret)
    assert_refused(run([CLI, "migrate"], env, cwd=tmp_path), ("BILLING_LAUNCH_SECRET",))
