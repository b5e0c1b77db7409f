"""The render cache of invoice PDFs: in memory for every invoice, on disk for final ones."""

from __future__ import annotations

import dataclasses
import logging
import stat
from collections.abc import Iterator

import pytest

from billing_app.pdf import cache, invoice
from billing_app.pdf.invoice import DocumentLine, InvoiceDocument, Party, TotalRow

DOCUMENT = InvoiceDocument(
    number="DEMO-0001",
    issue_date="Nov 26, 2026",
    period="Nov 26, 2026 – Dec 26, 2026",
    status="Paid",
    stamp="PAID",
    seller=Party("iEnterprise Inc.", ("1 Harbour Road",)),
    buyer=Party("Acme Corp", ("admin@acme.test",)),
    lines=(
        DocumentLine("Unlimited Version", "Nov 26, 2026 – Dec 26, 2026", "10", "$8.00", "$80.00"),
    ),
    totals=(TotalRow("Total", "$80.00", strong=True), TotalRow("Amount due", "$0.00", strong=True)),
    note="All amounts in USD.",
)


@pytest.fixture(autouse=True)
def renders(monkeypatch) -> Iterator[list[InvoiceDocument]]:
    """The documents rendered (not served from a cache), in order; memory starts empty."""
    rendered: list[InvoiceDocument] = []
    render = invoice.render_invoice

    def counting(document: InvoiceDocument, **options) -> bytes:
        rendered.append(document)
        return render(document, **options)

    monkeypatch.setattr(invoice, "render_invoice", counting)
    cache.clear_memory()
    yield rendered
    cache.clear_memory()


def pdf(
    directory, document: InvoiceDocument = DOCUMENT, *, keep_on_disk: bool = True, paper="a4"
) -> bytes:
    return cache.invoice_pdf(document, paper=paper, directory=directory, keep_on_disk=keep_on_disk)


def test_the_document_is_a_hashable_value():
    assert hash(DOCUMENT) == hash(dataclasses.replace(DOCUMENT))
    with pytest.raises(dataclasses.FrozenInstanceError):
        DOCUMENT.status = "Open"  # type: ignore[misc]


def test_a_repeat_is_served_from_memory_without_rendering(tmp_path, renders):
    first = pdf(tmp_path, keep_on_disk=False)
    assert first.startswith(b"%PDF-")
    assert pdf(tmp_path, keep_on_disk=False) is first
    assert renders == [DOCUMENT]


def test_a_final_invoice_is_served_from_disk_to_a_process_that_never_rendered_it(tmp_path, renders):
    directory = tmp_path / "pdf-cache"
    first = pdf(directory)
    cache.clear_memory()  # as in another process, or after a restart
    assert pdf(directory) == first
    assert renders == [DOCUMENT]
    (kept,) = directory.iterdir()
    assert kept.name == f"{cache.digest(DOCUMENT, 'a4')}.pdf" and kept.read_bytes() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_open_invoices_are_not_written_to_disk(tmp_path, renders):
    directory = tmp_path / "pdf-cache"
    pdf(directory, keep_on_disk=False)
    assert not directory.exists()
    cache.clear_memory()
    pdf(directory, keep_on_disk=False)
    assert len(renders) == 2


@pytest.mark.parametrize(
    "changed",
    [
        dataclasses.replace(DOCUMENT, status="Void", stamp="VOID"),
        dataclasses.replace(DOCUMENT, totals=(TotalRow("Total", "$80.01", strong=True),)),
        dataclasses.replace(DOCUMENT, buyer=Party("Acme Corp", ("billing@acme.test",))),
        # The same texts, labelled in another language.
        dataclasses.replace(DOCUMENT, locale="de"),
    ],
)
def test_a_changed_document_is_rendered_again(tmp_path, renders, changed):
    pdf(tmp_path)
    pdf(tmp_path, changed)
    assert renders == [DOCUMENT, changed]
    assert cache.digest(changed, "a4") != cache.digest(DOCUMENT, "a4")
    assert len(list(tmp_path.iterdir())) == 2


def test_another_paper_size_is_rendered_again(tmp_path, renders):
    pdf(tmp_path)
    pdf(tmp_path, paper="letter")
    assert len(renders) == 2


def test_a_new_template_version_renders_again(tmp_path, renders, monkeypatch):
    pdf(tmp_path)
    monkeypatch.setattr(invoice, "TEMPLATE_VERSION", invoice.TEMPLATE_VERSION + 1)
    cache.clear_memory()
    pdf(tmp_path)
    assert renders == [DOCUMENT, DOCUMENT]
    assert len(list(tmp_path.iterdir())) == 2  # the old file stays, never read again


def test_a_file_cut_short_is_rendered_again_and_replaced(tmp_path, renders):
    first = pdf(tmp_path)
    kept = tmp_path / f"{cache.digest(DOCUMENT, 'a4')}.pdf"
    kept.write_bytes(first[: len(first) // 2])
    cache.clear_memory()
    again = pdf(tmp_path)  # not equal to `first`: fpdf2 writes the time of the render into a PDF
    assert again.rstrip().endswith(b"%%EOF") and kept.read_bytes() == again
    assert len(renders) == 2


def test_a_directory_that_cannot_be_written_still_gives_the_pdf(tmp_path, renders, caplog):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with caplog.at_level(logging.WARNING, logger=cache.__name__):
        assert pdf(not_a_directory).startswith(b"%PDF-")
    assert "Cannot keep the PDF" in caplog.text
    assert [path.name for path in tmp_path.iterdir()] == ["file"]  # no temporary file left behind


def test_memory_keeps_the_most_recently_used(tmp_path, renders, monkeypatch):
    monkeypatch.setattr(cache, "MEMORY_ENTRIES", 2)
    one, two, three = (dataclasses.replace(DOCUMENT, number=f"DEMO-000{n}") for n in (1, 2, 3))
    for document in (one, two, one, three):  # `two` is the least recently used when `three` comes
        pdf(tmp_path, document, keep_on_disk=False)
    pdf(tmp_path, one, keep_on_disk=False)
    pdf(tmp_path, two, keep_on_disk=False)
    assert renders == [one, two, three, two]
