"""Stops the stack's process groups when `billing-admin run` dies, however it dies.

    python -m billing_app.reaper      (started by runner.Stack, never by hand)

The stack writes "+PGID" when it starts a process group and "-PGID" once that group is gone,
one per line, to this process's standard input. When the pipe closes (the parent exited,
crashed, or was killed with SIGKILL, which no handler of its own sees), every group still
listed gets SIGTERM, then SIGKILL after a grace period, grandchildren included.
"""

from __future__ import annotations

import os
import signal
import sys
import time

GRACE_SECONDS = 10.0


def _signal_groups(groups: set[int], signum: int) -> set[int]:
    """Send `signum` to each group; return the groups that still have members."""
    alive = set()
    for pgid in groups:
        try:
            os.killpg(pgid, signum)
            alive.add(pgid)
        except ProcessLookupError:
            pass
    return alive


def main() -> None:
    # Ctrl-C and `kill -TERM -PGID` are meant for the parent's group: the reaper outlives them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin:
        pgid = int(line[1:])
        if line.startswith("+"):
            groups.add(pgid)
        else:
            groups.discard(pgid)
    alive = _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = _signal_groups(alive, 0)
    _signal_groups(alive, signal.SIGKILL)


if __name__ == "__main__":
    main()
