"""Rendered invoice PDFs, cached by a digest of everything they show.

The key is a SHA-256 of the document (every text on it), the paper, the locale,
TEMPLATE_VERSION, the fpdf2 version and the fallback fonts installed here: a
document that changes in any way gets a new key, so a cached PDF is never stale.

- In memory, for every invoice: the last MEMORY_ENTRIES PDFs of this process.
- On disk, for invoices that never change again (the caller says which: paid or
  void ones): `<directory>/<digest>.pdf`, shared by every process. The directory
  is 0700, files 0600, written to a temporary file and renamed into place.
  Files of an older key (another template version, a changed name) stay but
  are never read again; removing the directory at any time only costs renders.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

import fpdf

from billing_app.pdf import fonts, invoice
from billing_app.pdf.invoice import InvoiceDocument, Paper

log = logging.getLogger(__name__)

MEMORY_ENTRIES = 128  # a PDF is ~20–60 KB
_memory: OrderedDict[str, bytes] = OrderedDict()
_lock = threading.Lock()


def digest(document: InvoiceDocument, paper: Paper) -> str:
    shown = {
        "template": invoice.TEMPLATE_VERSION,
        "fpdf2": fpdf.FPDF_VERSION,
        "locale": document.locale,
        "paper": paper,
        "fallback_fonts": [path.name for path in fonts.installed_fallback_fonts()],
        "document": dataclasses.asdict(document),
    }
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def invoice_pdf(
    document: InvoiceDocument, *, paper: Paper, directory: Path, keep_on_disk: bool
) -> bytes:
    """The document's PDF: from memory, else from `directory` (if `keep_on_disk`), else rendered."""
    key = digest(document, paper)
    with _lock:
        if (content := _memory.get(key)) is not None:
            _memory.move_to_end(key)
            return content
    path = directory / f"{key}.pdf"
    content = _read(path) if keep_on_disk else None
    if content is None:
        content = invoice.render_invoice(document, paper=paper)
        if keep_on_disk:
            _write(path, content)
    with _lock:
        _memory[key] = content
        if len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)
    return content


def clear_memory() -> None:
    with _lock:
        _memory.clear()


def _read(path: Path) -> bytes | None:
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        log.warning("Cannot read cached PDF %s", path, exc_info=True)
        return None
    # A file cut short (disk full, power cut before the data reached the disk) is rendered again.
    return content if content.startswith(b"%PDF-") and content.rstrip().endswith(b"%%EOF") else None


def _write(path: Path, content: bytes) -> None:
    """Atomically: readers in other processes see the whole file or none."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=".", suffix=".tmp"
        )  # mode 0600
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(content)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:  # the PDF is served all the same, only not kept
        log.warning("Cannot keep the PDF in %s", path.parent, exc_info=True)
