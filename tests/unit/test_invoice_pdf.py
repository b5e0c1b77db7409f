"""Invoice PDFs: what a reader (pypdf) finds in them equals what Stripe's invoice says."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from fpdf import FPDF
from pypdf import PdfReader

from billing_app.i18n import use_locale
from billing_app.pdf import fonts
from billing_app.pdf.invoice import REPLACEMENT_CHARACTER, Party, render_invoice
from billing_app.services.invoices import invoice_document, pdf_filename, seller_party
from billing_app.services.money import format_money
from billing_app.settings import Settings
from billing_app.stripe.snapshots import InvoiceLine, InvoiceSummary

START, END = datetime(2026, 11, 26, 9, 30), datetime(2026, 12, 26, 9, 30)
BUYER = Party("Acme Corp", ("admin@acme.test",))


def line(description: str, quantity: int, amount: int, proration: bool = False) -> InvoiceLine:
    return InvoiceLine(
        description=description,
        quantity=quantity,
        unit_amount=round(amount / quantity),
        amount=amount,
        period_start=START,
        period_end=END,
        proration=proration,
    )


def stripe_invoice(
    lines: tuple[InvoiceLine, ...], *, status: str = "paid", tax: int = 0, currency: str = "usd"
) -> InvoiceSummary:
    subtotal = sum(item.amount for item in lines)
    total = subtotal + tax
    paid = total if status == "paid" else 0
    return InvoiceSummary(
        id="in_1Test",
        number=None,
        created=datetime(2026, 11, 26, 9, 31),
        period_start=START,
        period_end=END,
        status=status,
        currency=currency,
        subtotal=subtotal,
        tax=tax,
        total=total,
        amount_paid=paid,
        amount_due=total,
        lines=lines,  # as on Stripe: amount_due stays the full amount once paid
    )


def settings(tmp_path, **values) -> Settings:
    return Settings(_env_file=None, billing_data_dir=tmp_path, **values)


def pdf_text(content: bytes) -> list[str]:
    """Each page's text, whitespace collapsed (long descriptions wrap inside their cell)."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(content)).pages]


def test_pdf_has_the_number_dates_every_line_and_stripes_totals(tmp_path):
    invoice = stripe_invoice(
        (
            line("Unlimited Version", 10, 8000),
            line(
                "Unused time on 10 × Unlimited Version after 26 Nov 2026", 10, -2667, proration=True
            ),
            line(
                "Remaining time on 12 × Unlimited Version after 26 Nov 2026",
                12,
                3201,
                proration=True,
            ),
        ),
        tax=853,
    )
    seller = seller_party(
        settings(
            tmp_path,
            billing_seller_name="iEnterprise Inc.",
            billing_seller_address="1 Harbour Road; Springfield 12345; USA",
            billing_seller_tax_id="US-99-1234567",
        )
    )
    content = render_invoice(invoice_document(invoice, "DEMO-0007", seller, BUYER))

    (text,) = pdf_text(content)
    assert content.startswith(b"%PDF-")
    for expected in (
        "INVOICE",
        "DEMO-0007",
        "Issue date Nov 26, 2026",
        "Billing period Nov 26, 2026 – Dec 26, 2026",
        "Status Paid",
        "PAID",
        "iEnterprise Inc.",
        "1 Harbour Road",
        "Springfield 12345",
        "Tax ID: US-99-1234567",
        "Acme Corp",
        "admin@acme.test",
        "All amounts in USD.",
        "Page 1 of 1",
    ):
        assert expected in text
    for item in invoice.lines:
        money = (
            f"{item.quantity} {format_money(item.unit_amount, 'usd')} "
            f"{format_money(item.amount, 'usd')}"
        )
        assert item.description in text and money in text
    assert text.count("Prorated") == 2
    # Stripe's amounts, not recomputed ones: 80.00 - 26.67 + 32.01 = 85.34, + 8.53 tax.
    assert "Subtotal $85.34" in text and "Tax $8.53" in text and "Total $93.87" in text
    for label, amount in (
        ("Subtotal", invoice.subtotal),
        ("Tax", invoice.tax),
        ("Total", invoice.total),
        ("Amount paid", invoice.amount_paid),
        ("Amount due", invoice.amount_remaining),
    ):
        assert f"{label} {format_money(amount, 'usd')}" in text
    assert PdfReader(io.BytesIO(content)).metadata.title == "Invoice DEMO-0007"


def test_open_invoice_has_no_stamp_and_shows_the_amount_due(tmp_path):
    invoice = stripe_invoice((line("Unlimited Version", 3, 2400),), status="open")
    (text,) = pdf_text(
        render_invoice(
            invoice_document(invoice, "DEMO-0002", seller_party(settings(tmp_path)), BUYER)
        )
    )
    assert "Status Open" in text and "PAID" not in text
    assert "Amount paid $0.00" in text and "Amount due $24.00" in text


def test_void_invoice_is_stamped_void(tmp_path):
    invoice = stripe_invoice((line("Unlimited Version", 1, 800),), status="void")
    (text,) = pdf_text(
        render_invoice(
            invoice_document(invoice, "DEMO-0003", seller_party(settings(tmp_path)), BUYER)
        )
    )
    assert "Status Void" in text and "VOID" in text


def test_zero_decimal_currency_is_written_without_cents(tmp_path):
    invoice = stripe_invoice((line("Unlimited Version", 2, 1600),), currency="jpy")
    (text,) = pdf_text(
        render_invoice(
            invoice_document(invoice, "DEMO-0004", seller_party(settings(tmp_path)), BUYER)
        )
    )
    assert "Total ¥1,600" in text and "All amounts in JPY." in text


def test_accented_names_round_trip(tmp_path):
    buyer = Party("Café Zürich", ("admin@café-zürich.test", "Bahnhofstraße 1", "8001 Zürich"))
    invoice = stripe_invoice((line("Unlimited Version — Ærøskøbing ½", 1, 800),))
    (text,) = pdf_text(
        render_invoice(
            invoice_document(invoice, "DEMO-0005", seller_party(settings(tmp_path)), buyer)
        )
    )
    for expected in (
        "Café Zürich",
        "admin@café-zürich.test",
        "Bahnhofstraße 1",
        "Unlimited Version — Ærøskøbing ½",
    ):
        assert expected in text
    assert REPLACEMENT_CHARACTER not in text


def test_text_no_font_can_draw_is_replaced_and_never_breaks_the_render(tmp_path):
    buyer = Party("東京商事 Café", ("admin@tokyo.test",))
    invoice = stripe_invoice((line("Unlimited Version 東京", 1, 800),))
    content = render_invoice(
        invoice_document(invoice, "DEMO-0006", seller_party(settings(tmp_path)), buyer),
        fallback_fonts=(),
    )
    (text,) = pdf_text(content)
    assert REPLACEMENT_CHARACTER * 4 + " Café" in text
    assert "Unlimited Version " + REPLACEMENT_CHARACTER * 2 in text and "Total $8.00" in text


def test_a_broken_fallback_font_is_skipped(tmp_path):
    broken = tmp_path / "broken.ttf"
    broken.write_bytes(b"not a font")
    invoice = stripe_invoice((line("Unlimited Version", 1, 800),))
    content = render_invoice(
        invoice_document(
            invoice, "DEMO-0008", seller_party(settings(tmp_path)), Party("東京商事", ())
        ),
        fallback_fonts=[broken],
    )
    assert REPLACEMENT_CHARACTER * 4 in pdf_text(content)[0]


@pytest.mark.skipif(
    not fonts.installed_fallback_fonts(), reason="no CJK font installed (e.g. fonts-droid-fallback)"
)
def test_cjk_names_use_an_installed_fallback_font(tmp_path):
    buyer = Party("東京商事", ("admin@tokyo.test",))
    invoice = stripe_invoice((line("Unlimited Version 東京", 1, 800),))
    (text,) = pdf_text(
        render_invoice(
            invoice_document(invoice, "DEMO-0009", seller_party(settings(tmp_path)), buyer)
        )
    )
    assert "東京商事" in text and "Unlimited Version 東京" in text
    assert REPLACEMENT_CHARACTER not in text


def test_sixty_lines_span_pages_with_headings_and_page_numbers(tmp_path):
    lines = tuple(
        line(f"Line {index:02d}: Unlimited Version", index, 800 * index) for index in range(1, 61)
    )
    invoice = stripe_invoice(lines)
    content = render_invoice(
        invoice_document(invoice, "DEMO-0060", seller_party(settings(tmp_path)), BUYER)
    )

    pages = pdf_text(content)
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"Invoice DEMO-0060 Page {number} of {len(pages)}" in text
        assert "Description Qty Unit price Amount" in text or number == len(pages)
    everything = " ".join(pages)
    for item in lines:  # each line exactly once, in order
        assert everything.count(item.description) == 1
    positions = [everything.index(item.description) for item in lines]
    assert positions == sorted(positions)
    assert f"Total {format_money(invoice.total, 'usd')}" in pages[-1]
    assert "Amount due $0.00" in pages[-1]


def test_letter_paper(tmp_path):
    invoice = stripe_invoice((line("Unlimited Version", 1, 800),))
    content = render_invoice(
        invoice_document(invoice, "DEMO-0010", seller_party(settings(tmp_path)), BUYER),
        paper="letter",
    )
    box = PdfReader(io.BytesIO(content)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (612, 792)


# The lines table ---------------------------------------------------------------------------------

PT = 72 / 25.4  # PDF points per mm


def drawn_texts(content: bytes) -> list[tuple[int, float, float, float, str]]:
    """Each text the PDF draws: page index, x and y (mm from the top left), font size (pt), text."""
    drawn = []
    for index, page in enumerate(PdfReader(io.BytesIO(content)).pages):
        height = float(page.mediabox.height)

        def visit(text, cm, tm, font, size, index=index, height=height):
            if text.strip():
                drawn.append((index, tm[4] / PT, (height - tm[5]) / PT, size, text.strip()))

        page.extract_text(visitor_text=visit)
    return drawn


def text_width(text: str, size: float) -> float:
    """The width in mm of regular DejaVu text, as the invoice measures it."""
    pdf = FPDF(unit="mm")
    pdf.add_font("dejavu", "", fonts.REGULAR)
    pdf.set_font("dejavu", "", size)
    return pdf.get_string_width(text)


def test_a_long_description_wraps_inside_its_column_next_to_its_amounts(tmp_path):
    words = (
        "Enterprise seats for the research department, billed monthly in advance, per named user "
        * 2
    )
    unbreakable = "Supercalifragilisticexpialidocious" * 3  # wider than the column: broken inside
    invoice = stripe_invoice(
        (line(words + unbreakable, 7, 4242), line("Unlimited Version", 1, 800))
    )
    content = render_invoice(
        invoice_document(invoice, "DEMO-0015", seller_party(settings(tmp_path)), BUYER)
    )

    (text,) = pdf_text(content)
    assert words.strip() in text and unbreakable in text.replace(" ", "")
    drawn = drawn_texts(content)
    left = 18 + 2  # margin, then the cell's padding
    column_end = 18 + 96 - 2
    squeezed = (words + unbreakable).replace(" ", "")
    description = [
        (x, y, content)
        for _, x, y, size, content in drawn
        if size == 9 and x < column_end and content.replace(" ", "") in squeezed
    ]
    assert len({y for _, y, _ in description}) >= 4  # wrapped over several lines...
    for x, _, content in description:  # ... each inside the column
        assert (
            x == pytest.approx(left, abs=0.01) and x + text_width(content, 9) <= column_end + 0.01
        )
    first_line_y = min(y for _, y, _ in description)
    (amount,) = [(x, y) for _, x, y, _, content in drawn if content == "$42.42"]
    assert amount[1] == pytest.approx(
        first_line_y, abs=0.01
    )  # top-aligned: on the row's first line
    assert amount[0] + text_width("$42.42", 9) == pytest.approx(
        210 - 18 - 2, abs=0.01
    )  # right-aligned
    period = min(
        y for _, x, y, _, content in drawn if content.startswith("Nov 26, 2026 – Dec 26") and x < 30
    )
    assert period > max(y for _, y, _ in description)  # the detail on a line of its own, below


def test_rows_never_split_across_pages_and_the_heading_repeats(tmp_path):
    # Rows one to six lines tall: some reach the bottom of a page and must move whole to the next.
    lines = tuple(
        line(
            f"Line {index:02d}: " + "extended support hours " * (index % 6 * 5), 1, 100 * index + 1
        )
        for index in range(1, 41)
    )
    content = render_invoice(
        invoice_document(
            stripe_invoice(lines), "DEMO-0016", seller_party(settings(tmp_path)), BUYER
        )
    )

    pages = pdf_text(content)
    assert len(pages) >= 3
    for item in lines:
        (page,) = [text for text in pages if f"{item.description.split(':')[0]}:" in text]
        whole_row = (
            f"{item.description.strip()} Nov 26, 2026 – Dec 26, 2026 1 "
            f"{format_money(item.amount, 'usd')} {format_money(item.amount, 'usd')}"
        )
        assert whole_row in page
    drawn = drawn_texts(content)
    for number, text in enumerate(pages):
        if "Line " not in text:
            continue
        assert text.count("Description Qty Unit price Amount") == 1
        on_page = [(y, content) for index, _, y, _, content in drawn if index == number]
        heading_y = next(y for y, content in on_page if content == "Description")  # y: baselines
        assert heading_y < min(y for y, content in on_page if content.startswith("Line "))
        if number:
            assert heading_y < 18 + 9  # at the top of the page
        assert (
            max(y for y, content in on_page if not content.startswith(("Invoice DEMO", "Page ")))
            < 297 - 22
        )


def test_a_row_taller_than_a_page_goes_on_over_the_next_page(tmp_path):
    description = "Line item " + " ".join(f"word{index:03d}" for index in range(900))
    content = render_invoice(
        invoice_document(
            stripe_invoice((line(description, 1, 800),)),
            "DEMO-0017",
            seller_party(settings(tmp_path)),
            BUYER,
        )
    )
    pages = pdf_text(content)
    assert len(pages) >= 2 and all(
        text.startswith("Description Qty Unit price Amount word") for text in pages[1:]
    )
    assert (
        "Line item word000" in pages[0] and "$8.00 $8.00" in pages[0]
    )  # it starts on the first page
    drawn = " ".join(text for _, x, _, size, text in drawn_texts(content) if size == 9 and x < 30)
    assert description in drawn  # all of it, in order


def test_an_invoice_without_lines_says_so(tmp_path):
    (text,) = pdf_text(
        render_invoice(
            invoice_document(
                stripe_invoice(()), "DEMO-0018", seller_party(settings(tmp_path)), BUYER
            )
        )
    )
    assert "Description Qty Unit price Amount No lines" in text and "Total $0.00" in text


def test_letter_paper_table_spans_its_width(tmp_path):
    invoice = stripe_invoice((line("Unlimited Version " * 8, 3, 2400),))
    content = render_invoice(
        invoice_document(invoice, "DEMO-0019", seller_party(settings(tmp_path)), BUYER),
        paper="letter",
    )
    (text,) = pdf_text(content)
    assert ("Unlimited Version " * 8).strip() in text and "Page 1 of 1" in text
    drawn = drawn_texts(content)
    width = 215.9 - 2 * 18
    _, amount = min(
        (y, x) for _, x, y, _, content in drawn if content == "$24.00"
    )  # the line's, above the total
    assert amount + text_width("$24.00", 9) == pytest.approx(215.9 - 18 - 2, abs=0.01)
    (qty_heading,) = [x for _, x, _, _, content in drawn if content == "Qty"]
    assert (
        qty_heading < 18 + width * 110 / 174 - 2 < qty_heading + 10
    )  # the columns scale with the page
    for _, x, _, size, content in drawn:
        if content.startswith("Unlimited"):
            assert x + text_width(content, 9) <= 18 + width * 96 / 174 - 2 + 0.01


@pytest.mark.parametrize(
    "number, filename",
    [
        ("DEMO-0001", "invoice-DEMO-0001.pdf"),
        ("ACME 2026/07", "invoice-ACME-2026-07.pdf"),
        ('"; evil', "invoice-evil.pdf"),
        ("東京", "invoice-document.pdf"),
    ],
)
def test_file_names_are_safe_in_a_header(number, filename):
    assert pdf_filename(number) == filename


# Fonts --------------------------------------------------------------------------------------------


def test_documents_one_after_the_other_each_have_their_own_text(tmp_path):
    seller = seller_party(settings(tmp_path))
    first = render_invoice(
        invoice_document(
            stripe_invoice((line("Ærøskøbing ½ plan", 1, 800),)),
            "DEMO-0012",
            seller,
            Party("Ørsted Ålborg", ()),
        )
    )
    second = render_invoice(
        invoice_document(
            stripe_invoice((line("Quarterly wxyz plan", 2, 1600),)),
            "DEMO-0013",
            seller,
            Party("Jqkv GmbH", ()),
        )
    )
    (first_text,), (second_text,) = pdf_text(first), pdf_text(second)
    assert (
        "Ørsted Ålborg" in first_text
        and "Ærøskøbing ½ plan" in first_text
        and "DEMO-0012" in first_text
    )
    assert (
        "Jqkv GmbH" in second_text
        and "Quarterly wxyz plan" in second_text
        and "DEMO-0013" in second_text
    )
    assert (
        "Ørsted" not in second_text and "Jqkv" not in first_text and "DEMO-0012" not in second_text
    )


def test_documents_rendered_concurrently_each_have_their_own_text(tmp_path):
    seller = seller_party(settings(tmp_path))
    names = [
        "Åsa Öberg AB",
        "Café Zürich",
        "Jqkv GmbH",
        "Łódź Sp. z o.o.",
        "Ελληνική Α.Ε.",
        "ООО Ромашка",
        "Núñez y Cía",
        "Smørrebrød ApS",
    ]
    if fonts.installed_fallback_fonts():
        names.append("東京商事")

    def render(index: int) -> bytes:
        invoice = stripe_invoice((line(f"Plan for {names[index]}", index + 1, 800 * (index + 1)),))
        return render_invoice(
            invoice_document(invoice, f"DEMO-{100 + index}", seller, Party(names[index], ()))
        )

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        contents = list(pool.map(render, range(len(names))))
    for index, content in enumerate(contents):
        (text,) = pdf_text(content)
        assert (
            names[index] in text
            and f"Plan for {names[index]}" in text
            and f"DEMO-{100 + index}" in text
        )
        assert REPLACEMENT_CHARACTER not in text
        assert all(other not in text for other in names if other != names[index])


def test_text_too_long_for_one_line_wraps(tmp_path):
    buyer = Party(
        "Aktiengesellschaft für Datenverarbeitung und Kommunikationstechnik Zürich-Oerlikon",
        ("A very long address line that cannot possibly fit into half of an A4 page width",),
    )
    content = render_invoice(
        invoice_document(
            stripe_invoice((line("Unlimited Version", 1, 800),)),
            "DEMO-0014",
            seller_party(settings(tmp_path)),
            buyer,
        )
    )
    (text,) = pdf_text(content)
    assert buyer.name in text and buyer.lines[0] in text


def test_a_german_invoice_is_written_in_german(tmp_path):
    invoice = stripe_invoice((line("Unlimited Version", 10, 8000, proration=True),), tax=1520)
    with use_locale("de"):
        document = invoice_document(invoice, "DEMO-0009", seller_party(settings(tmp_path)), BUYER)
    (text,) = pdf_text(render_invoice(document))
    for expected in (
        "RECHNUNG",
        "RECHNUNG AN",
        "Rechnungsnummer DEMO-0009",
        "Rechnungsdatum 26.11.2026",
        "Zeitraum 26.11.2026 – 26.12.2026",
        "Status Bezahlt",
        "Beschreibung Anz. Einzelpreis Betrag",
        "Anteilig",
        "Zwischensumme 80,00 $",
        "Steuer 15,20 $",
        "Gesamt 95,20 $",
        "BEZAHLT",
        "Alle Beträge in USD.",
        "Rechnung DEMO-0009",
        "Seite 1 von 1",
    ):
        assert expected in text, expected
    assert "Invoice" not in text and "Total" not in text
