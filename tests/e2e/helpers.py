"""Helpers shared by the end-to-end tests."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

from pypdf import PdfReader

# Every secret the tests hand out, for the check that none of them is stored or logged.
# (Kept here, not in conftest.py: pytest imports conftest under another module name.)
ISSUED_SECRETS: list[str] = []


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
