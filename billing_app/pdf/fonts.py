"""Fonts for PDFs: DejaVu Sans shipped in assets/, plus fallbacks found on the machine.

DejaVu covers Latin, Greek, Cyrillic and many symbols, not Chinese, Japanese or
Korean. A CJK font is far too large to ship, so one installed by the system
(e.g. Debian's fonts-droid-fallback) is used when present.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

FONT_DIR = Path(__file__).resolve().parents[2] / "assets" / "fonts"
REGULAR = FONT_DIR / "DejaVuSans.ttf"
BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"

SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# CJK fonts with TrueType outlines (what fpdf2 embeds best), best coverage first.
FALLBACK_FILE_NAMES = (
    "DroidSansFallbackFull.ttf",  # fonts-droid-fallback
    "DroidSansFallback.ttf",
    "wqy-microhei.ttc",  # fonts-wqy-microhei
    "wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "ipagp.ttf",  # fonts-ipafont-gothic
    "NanumGothic.ttf",  # fonts-nanum
)


@lru_cache(maxsize=1)
def installed_fallback_fonts() -> tuple[Path, ...]:
    """The fallback fonts installed on this machine, in FALLBACK_FILE_NAMES order."""
    found: dict[str, Path] = {}
    for directory in SYSTEM_FONT_DIRS:
        if directory.is_dir():
            for path in directory.rglob("*"):
                if path.name in FALLBACK_FILE_NAMES and path.is_file():
                    found.setdefault(path.name, path)
    return tuple(found[name] for name in FALLBACK_FILE_NAMES if name in found)
