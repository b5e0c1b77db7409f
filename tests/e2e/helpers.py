"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pypdf import PdfReader

from billing_app.services import license_answers

# Every secret the tests hand out, for the check that none of them is stored or logged.
# (Kept here, not in conftest.py: pytest imports conftest under another module name.)
ISSUED_SECRETS: list[str] = []


T = TypeVar("T")


def settled(read: Callable[[], T], expected: T) -> T:
    """`read()` once it gives `expected`, or its last value after the license check's documented
    lag: a worker may answer from its cache up to MAX_LAG_SECONDS behind a change committed by
    another process (another worker, this test process)."""
    deadline = time.monotonic() + license_answers.MAX_LAG_SECONDS + license_answers.POLL_SECONDS
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def fill_card(frame, number: str, expiry_month: str = "12", expiry_year: str = "31") -> None:
    """Type a card into the Stripe.js card element (localstripe's inputs in test mode)."""
    frame.get_by_placeholder("number").fill(number)
    frame.get_by_placeholder("exp_month").fill(expiry_month)
    frame.get_by_placeholder("exp_year").fill(expiry_year)
    frame.get_by_placeholder("cvc").fill("123")
    frame.get_by_placeholder("postal_code").fill("10001")


def pdf_text(content: bytes) -> str:
    return " ".join(
        " ".join(p.extract_text().split()) for p in PdfReader(io.BytesIO(content)).pages
    )


def save_pdf_and_png(content: bytes, pdf: Path) -> None:
    """The PDF beside a PNG of each of its pages (poppler-utils, when installed), to look at."""
    pdf.write_bytes(content)
    if shutil.which("pdftoppm"):
        subprocess.run(
            ["pdftoppm", "-png", "-r", "80", str(pdf), str(pdf.with_suffix(""))],
            check=True,
            timeout=60,
        )
