"""Production installs requirements.txt only: the app must start without what only
requirements-dev.txt installs (localstripe, test and lint tools)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Imports every module of the app (except the emulator's launcher, which only test mode runs)
# as production would: the development-only packages (argv[1], JSON) cannot be imported.
IMPORT_THE_APP = """
import importlib, json, pkgutil, sys

class NotInstalled:
    def __init__(self, names):
        self.names = set(names)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled(json.loads(sys.argv[1])))
import billing_app
for module in pkgutil.walk_packages(billing_app.__path__, "billing_app."):
    # The embedded Stripe emulator (localstripe and its extension) is development-only.
    if module.name not in ("billing_app.localstripe_server", "billing_app.stripe.emulator"):
        importlib.import_module(module.name)
import rxconfig
"""
PRODUCTION = {
    "BILLING_ENV": "production",
    "STRIPE_SECRET_KEY": "sk_live_x",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "BILLING_LAUNCH_SECRET": "k" * 32,
    "DATABASE_URL": "postgresql+psycopg://billing@127.0.0.1:9/billing",
    "BILLING_PUBLIC_URL": "https://billing.example.com",
    "BILLING_FRAME_ANCESTORS": "'self'",
}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned(requirements: str) -> set[str]:
    lines = (PROJECT_ROOT / requirements).read_text().splitlines()
    return {_canonical(line.split("==")[0]) for line in lines if "==" in line}


def test_the_app_starts_without_development_packages(tmp_path):
    development_only = _pinned("requirements-dev.txt") - _pinned("requirements.txt")
    assert {"localstripe", "pytest", "playwright", "hypothesis"} <= development_only
    modules = sorted(
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if all(_canonical(dist) in development_only for dist in dists)
    )
    env = os.environ | PRODUCTION | {"BILLING_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_THE_APP, json.dumps(modules)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
