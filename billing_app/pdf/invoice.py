"""The invoice PDF: lays out an `InvoiceDocument` (display strings) with fpdf2.

What goes on the invoice, and how amounts and dates are written, is decided
by billing_app.services.invoices; this module only places it on A4 or Letter
pages: seller and buyer blocks, the invoice facts, a PAID/VOID stamp, one
table row per line (fpdf2's table(); the heading repeats on each page), totals,
page numbers. Rendered bytes are cached by billing_app.pdf.cache.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fpdf import FPDF, FontFace
from fpdf.enums import (
    CellBordersLayout,
    TableBordersLayout,
    TableHeadingsDisplay,
    VAlign,
    XPos,
    YPos,
)

from billing_app.i18n import N_, _, use_locale
from billing_app.pdf import fonts

log = logging.getLogger(__name__)

Paper = Literal["a4", "letter"]

# Part of every cached PDF's key (billing_app.pdf.cache): raise it with any change to how
# a document looks (layout, colours, shipped fonts), so no PDF of the old look is served.
TEMPLATE_VERSION = 2

FAMILY = "dejavu"
# What a character no loaded font can draw becomes, instead of silently vanishing.
REPLACEMENT_CHARACTER = "\N{REPLACEMENT CHARACTER}"
_KEPT_CONTROLS = {"\n"}
_KEPT_CODES = {ord(ch) for ch in _KEPT_CONTROLS}

MARGIN = 18.0
BOTTOM_MARGIN = 22.0
PAGE_NUMBER_WIDTH = 24.0
INK = (33, 37, 41)
MUTED = (104, 112, 122)
RULE = (218, 222, 227)
HEADING_FILL = (244, 245, 248)
# The stamps, as InvoiceDocument.stamp names them; their words are translated when drawn.
STAMP_COLORS = {N_("PAID"): (34, 139, 84), N_("VOID"): (130, 136, 145)}


@dataclass(frozen=True)
class Party:
    name: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentLine:
    description: str
    detail: str  # e.g. the service period, "(proration)"
    quantity: str
    unit_price: str
    amount: str


@dataclass(frozen=True)
class TotalRow:
    label: str
    amount: str
    strong: bool = False


@dataclass(frozen=True)
class InvoiceDocument:
    number: str
    issue_date: str
    period: str
    status: str
    stamp: str | None  # "PAID", "VOID" or None
    seller: Party
    buyer: Party
    lines: tuple[DocumentLine, ...]
    totals: tuple[TotalRow, ...]
    note: str  # e.g. "All amounts in US dollars (USD)."
    # The language of the labels ("en", "de"); the texts above are already written in it.
    locale: str = "en"

    def texts(self) -> list[str]:
        """Every piece of text that comes from data (labels are ours, drawable with DejaVu)."""
        parties = [self.seller.name, *self.seller.lines, self.buyer.name, *self.buyer.lines]
        lines = [text for line in self.lines for text in (line.description, line.detail)]
        return [self.number, self.period, *parties, *lines]


class _InvoicePDF(FPDF):
    def __init__(self, document: InvoiceDocument, paper: Paper) -> None:
        super().__init__(orientation="portrait", unit="mm", format=paper)
        self.document = document
        self._cmaps: list[dict[int, object]] = []
        self._drawable_chars: set[str] = set(_KEPT_CONTROLS)  # known drawable with the loaded fonts

    def use_fonts(self, fallback_fonts: Sequence[Path]) -> None:
        self.add_font(FAMILY, "", fonts.REGULAR)
        self.add_font(FAMILY, "B", fonts.BOLD)
        self._cmaps = [self.fonts[FAMILY].cmap]
        missing = {ch for text in self.document.texts() for ch in text if not self._drawable(ch)}
        # fpdf2 parses a CJK font for every PDF (~0.3 s) and its glyphs make the PDF
        # bigger: only load fallbacks a document needs.
        fallback_ids = [FAMILY]  # bold text falls back to regular DejaVu first
        for index, path in enumerate(fallback_fonts):
            if not missing:
                break
            font_id = f"fallback{index}"
            try:
                self.add_font(font_id, "", path)
            except Exception:  # a broken or unsupported font file must not break the invoice
                log.warning("Cannot use fallback font %s", path, exc_info=True)
                continue
            self._cmaps.append(self.fonts[font_id].cmap)
            fallback_ids.append(font_id)
            missing = {ch for ch in missing if not self._drawable(ch)}
        if len(fallback_ids) == 1 and self._in_both_styles(self.document):
            # Nothing to fall back to: with fallback fonts set, fpdf2 splits every text it
            # draws or measures character by character (a quarter of the layout time).
            return
        self.set_fallback_fonts(fallback_ids, exact_match=False)

    def _in_both_styles(self, document: InvoiceDocument) -> bool:
        """Whether regular and bold DejaVu have every character of the document."""
        regular, bold = self.fonts[FAMILY].cmap, self.fonts[FAMILY + "B"].cmap
        chars = {
            ord(ch) for text in _strings(dataclasses.astuple(document)) for ch in text
        } - _KEPT_CODES
        return all(code in regular and code in bold for code in chars)

    def _drawable(self, ch: str) -> bool:
        if ch in self._drawable_chars:
            return True
        if any(ord(ch) in cmap for cmap in self._cmaps):
            self._drawable_chars.add(ch)  # fonts are only added, so it stays drawable
            return True
        return False

    def normalize_text(self, text: str) -> str:
        # Called by fpdf2 on every text it draws or measures: the common case, all
        # characters already seen, is a single set look-up at C speed.
        if self._drawable_chars.issuperset(text):
            return text
        return "".join(ch if self._drawable(ch) else REPLACEMENT_CHARACTER for ch in text)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FAMILY, "", 8)
        self.set_text_color(*MUTED)
        self.cell(
            self.epw - PAGE_NUMBER_WIDTH,
            5,
            _("Invoice %(number)s") % {"number": self.document.number},
        )
        # Left-aligned: fpdf2 measures "{nb}" before the page count replaces it,
        # so right-aligned text would end short of the margin.
        self.cell(
            PAGE_NUMBER_WIDTH,
            5,
            _("Page %(page)s of %(pages)s") % {"page": self.page_no(), "pages": "{nb}"},
        )


def render_invoice(
    document: InvoiceDocument, *, paper: Paper = "a4", fallback_fonts: Sequence[Path] | None = None
) -> bytes:
    """The invoice as PDF bytes, labelled in the document's locale. `fallback_fonts`: by default
    the CJK fonts installed here."""
    with use_locale(document.locale):
        pdf = _InvoicePDF(document, paper)
        pdf.use_fonts(
            fonts.installed_fallback_fonts() if fallback_fonts is None else fallback_fonts
        )
        pdf.set_title(_("Invoice %(number)s") % {"number": document.number})
        pdf.set_author(document.seller.name)
        pdf.set_margins(MARGIN, MARGIN, MARGIN)
        pdf.set_auto_page_break(True, margin=BOTTOM_MARGIN)
        pdf.add_page()
        _header(pdf, document)
        _parties_and_facts(pdf, document)
        _lines_table(pdf, document)
        _totals(pdf, document)
        return bytes(pdf.output())


def _strings(values: tuple) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, tuple):
            yield from _strings(value)


def _text_lines(pdf: FPDF, width: float, height: float, text: str, align: str = "L") -> None:
    """Text wrapped into lines `width` wide (0: up to the right margin), then a new line."""
    pdf.multi_cell(width, height, text, align=align, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _half_width(pdf: FPDF) -> float:
    return (pdf.epw - 10) / 2


def _header(pdf: FPDF, document: InvoiceDocument) -> None:
    top = pdf.get_y()
    pdf.set_text_color(*INK)
    pdf.set_font(FAMILY, "B", 13)
    _text_lines(pdf, _half_width(pdf), 6, document.seller.name)
    pdf.set_font(FAMILY, "", 9)
    pdf.set_text_color(*MUTED)
    for line in document.seller.lines:
        _text_lines(pdf, _half_width(pdf), 4.5, line)
    left_bottom = pdf.get_y()

    right = pdf.l_margin + _half_width(pdf) + 10
    pdf.set_xy(right, top)
    pdf.set_text_color(*INK)
    pdf.set_font(FAMILY, "B", 22)
    pdf.cell(_half_width(pdf), 10, _("INVOICE"), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FAMILY, "", 10)
    pdf.set_text_color(*MUTED)
    pdf.cell(_half_width(pdf), 5, document.number, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_y(max(left_bottom, pdf.get_y()) + 6)
    pdf.set_draw_color(*RULE)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(6)


def _parties_and_facts(pdf: FPDF, document: InvoiceDocument) -> None:
    top = pdf.get_y()
    width = _half_width(pdf)
    pdf.set_font(FAMILY, "B", 8)
    pdf.set_text_color(*MUTED)
    pdf.cell(width, 5, _("BILL TO"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*INK)
    pdf.set_font(FAMILY, "B", 11)
    _text_lines(pdf, width, 5.5, document.buyer.name)
    pdf.set_font(FAMILY, "", 9)
    for line in document.buyer.lines:
        _text_lines(pdf, width, 4.5, line)
    left_bottom = pdf.get_y()

    right = pdf.l_margin + width + 10
    pdf.set_y(top)
    facts = (
        (_("Invoice number"), document.number, False),
        (_("Issue date"), document.issue_date, False),
        (_("Billing period"), document.period or "—", False),
        (_("Status"), document.status, True),
    )
    for label, value, strong in facts:
        pdf.set_x(right)
        pdf.set_font(FAMILY, "", 9)
        pdf.set_text_color(*MUTED)
        pdf.cell(30, 5.5, label)
        pdf.set_text_color(*INK)
        pdf.set_font(FAMILY, "B" if strong else "", 9)
        _text_lines(pdf, width - 30, 5.5, value, align="R")
    pdf.set_y(max(left_bottom, pdf.get_y()) + 8)


# The lines table: fpdf2's table() never splits a row across pages and repeats the heading
# row on each page. It refuses a row taller than a page, so a description that long (a
# custom invoice item) is cut into rows of ROW_PART_LINES lines. A cell has one style: a
# line's detail (its period, "Prorated") is a line of its own below the description.
COLUMNS = (
    (N_("Description"), 96, "LEFT"),
    (N_("Qty"), 14, "RIGHT"),
    (N_("Unit price"), 32, "RIGHT"),
    (N_("Amount"), 32, "RIGHT"),
)
LINE_HEIGHT = 4.6
PADDING = (2.2, 2.0)  # inside each cell: top and bottom, left and right
ROW_PART_LINES = 20  # two such rows fit on a page under the heading
HEADINGS = FontFace(family=FAMILY, emphasis="BOLD", size_pt=8, color=MUTED, fill_color=HEADING_FILL)
MUTED_TEXT = FontFace(family=FAMILY, emphasis="", size_pt=8, color=MUTED)


def _lines_table(pdf: FPDF, document: InvoiceDocument) -> None:
    description_width = pdf.epw * COLUMNS[0][1] / sum(width for _title, width, _a in COLUMNS)
    pdf.set_font(FAMILY, "", 9)  # the cells' style
    pdf.set_text_color(*INK)
    pdf.set_draw_color(*RULE)
    with pdf.table(
        col_widths=[width for _title, width, _a in COLUMNS],
        text_align=[align for _title, _w, align in COLUMNS],
        v_align=VAlign.T,
        line_height=LINE_HEIGHT,
        padding=PADDING,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        headings_style=HEADINGS,
        repeat_headings=TableHeadingsDisplay.ON_TOP_OF_EVERY_PAGE,
    ) as table:
        table.row([_(title) for title, _w, _a in COLUMNS])
        if not document.lines:
            table.row().cell(_("No lines"), colspan=len(COLUMNS), style=MUTED_TEXT)
        for line in document.lines:
            description = "\n".join(text for text in (line.description, line.detail) if text)
            wrapped = pdf.multi_cell(
                description_width,
                LINE_HEIGHT,
                description,
                padding=PADDING,
                dry_run=True,
                output="LINES",
            )
            parts = [
                "\n".join(wrapped[start : start + ROW_PART_LINES])
                for start in range(0, len(wrapped), ROW_PART_LINES)
            ]
            if len(parts) <= 1:
                table.row([description, line.quantity, line.unit_price, line.amount])
                continue
            for index, part in enumerate(parts):  # one line item: no rules between its parts
                border = (CellBordersLayout.TOP if index == 0 else CellBordersLayout.NONE) | (
                    CellBordersLayout.BOTTOM if index == len(parts) - 1 else CellBordersLayout.NONE
                )
                amounts = (
                    (line.quantity, line.unit_price, line.amount) if index == 0 else ("", "", "")
                )
                row = table.row()
                for text in (part, *amounts):
                    row.cell(text, border=border)


def _totals(pdf: FPDF, document: InvoiceDocument) -> None:
    row_height = 6.0
    needed = row_height * len(document.totals) + 20
    if pdf.will_page_break(needed):
        pdf.add_page()
    pdf.ln(4)
    top = pdf.get_y()
    width = _half_width(pdf)
    left = pdf.l_margin + width + 10
    for row in document.totals:
        if row.strong:
            pdf.set_draw_color(*RULE)
            pdf.line(left, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
        pdf.set_x(left)
        pdf.set_text_color(*(INK if row.strong else MUTED))
        pdf.set_font(FAMILY, "B" if row.strong else "", 10 if row.strong else 9)
        pdf.cell(width / 2, row_height, row.label)
        pdf.set_text_color(*INK)
        pdf.cell(width / 2, row_height, row.amount, align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    bottom = pdf.get_y()
    if document.stamp:
        _stamp(pdf, document.stamp, x=pdf.l_margin + 18, y=top + 4)
    pdf.set_y(bottom + 6)
    pdf.set_font(FAMILY, "", 8)
    pdf.set_text_color(*MUTED)
    _text_lines(pdf, 0, 4.5, document.note)


def _stamp(pdf: FPDF, stamp: str, *, x: float, y: float) -> None:
    color, text = STAMP_COLORS.get(stamp, MUTED), _(stamp)
    pdf.set_font(FAMILY, "B", 22)
    width, height = pdf.get_string_width(text) + 10, 13.0
    with pdf.rotation(12, x + width / 2, y + height / 2):
        pdf.set_draw_color(*color)
        pdf.set_text_color(*color)
        pdf.set_line_width(0.9)
        pdf.rect(x, y, width, height, round_corners=True, corner_radius=2)
        pdf.set_xy(x, y)
        pdf.cell(width, height, text, align="C")
        pdf.set_line_width(0.2)
