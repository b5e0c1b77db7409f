"""Files only this user may read: the data directory (0700) and what is in it (0600).

The data directory holds the SQLite database, generated secrets, logs and the emulator's
store: account data, password hashes and test cards are nobody else's business on a
shared machine. Existing files and directories are tightened too (a checkout made before
this rule, or a permissive umask).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as a 0700 directory; tighten it if it exists."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty as a 0600 file if it is missing (before another program creates it with
    the umask's mode, e.g. SQLite); tighten it if it exists."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
        path.chmod(FILE_MODE)
    return path


def open_private_log(path: Path) -> BinaryIO:
    """`path` opened for appending, a 0600 file."""
    return open(private_file(path), "ab")
