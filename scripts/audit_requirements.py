"""`make lint`'s dependency audit: pip-audit over the pinned requirements files.

Fails on a known vulnerability. When the vulnerability service does not answer (no
network, or a registry mirror without its per-version data) the audit is skipped with
one line, so `make lint` stays fast and usable offline.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Seconds: per request, and for the whole audit.
REQUEST_TIMEOUT = 5
AUDIT_TIMEOUT = 90


def main(requirement_files: list[str]) -> int:
    pip_audit = Path(sys.executable).parent / "pip-audit"
    sources = [arg for path in requirement_files for arg in ("-r", path)]
    command = [
        str(pip_audit),
        *sources,
        "--no-deps",
        "--disable-pip",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        str(REQUEST_TIMEOUT),
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=AUDIT_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        return skipped(f"no answer within {AUDIT_TIMEOUT} s")
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        # pip-audit prints no report when the service cannot be reached.
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return skipped(last_line[:160])

    dependencies = report["dependencies"]
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    if not audited:
        return skipped(f"it knows none of the {len(dependencies)} pinned packages")
    vulnerable = [dep for dep in audited if dep["vulns"]]
    for dep in vulnerable:
        ids = ", ".join(vuln["id"] for vuln in dep["vulns"])
        print(f"pip-audit: {dep['name']} {dep['version']}: {ids}")
    not_audited = len(dependencies) - len(audited)
    print(
        f"pip-audit: {len(audited)} packages audited, {len(vulnerable)} with known vulnerabilities"
        + (f", {not_audited} unknown to the service" if not_audited else "")
    )
    return 1 if vulnerable else 0


def skipped(reason: str) -> int:
    print(f"pip-audit: skipped, the vulnerability service did not answer ({reason})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
