"""Running the app (as `make run` and `make test` do) leaves the work tree as it was: Reflex
rewrites `reflex.lock/package.json` and adds its entries to `.gitignore` when they differ from
what it would write, so both are committed in Reflex's own form."""

from __future__ import annotations

import subprocess

import pytest

from billing_app.runner import PROJECT_ROOT, Stack

pytestmark = pytest.mark.e2e


def _tree_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# Read when the tests are collected, before any of them has started the app.
TREE_BEFORE_THE_APP = _tree_status()


def test_the_running_app_leaves_the_work_tree_as_it_found_it(app_stack: Stack):
    assert app_stack.settings.public_url  # the app was built and started for this run
    assert _tree_status() == TREE_BEFORE_THE_APP
