"""Embedded TrueType fonts parsed once per process and subset quickly for each PDF.

Plain fpdf2 (2.8.9) costs ~40 ms per font per document before any text is laid
out: `add_font` parses the whole font file with fontTools (cmap, hmtx, widths of
every character), and `output()` runs fontTools' subsetter on it, which
decompiles and recompiles the glyf table (~10 ms even for a 40-glyph font).

Here instead:
- `SharedFont` parses a font file once per process (`shared_font`, thread-safe)
  and keeps what never changes: fpdf2's own `TTFFont` built from the file (used
  as a template: character widths, cmap, glyph ids, font descriptor) and the raw
  TrueType tables.
- `SharedFontsPDF.add_font` gives each document its own `TTFFont` copied cheaply
  from the template: shared read-only tables, but its own `SubsetMap` (the glyphs
  this document uses and their character ids), font number and descriptor object.
- `output()` embeds those fonts with `SharedFont.subset`: a TrueType subset cut
  out of the raw `glyf`/`loca`/`hmtx` bytes of just the glyphs used (plus the
  components of composite glyphs), so its cost grows with the glyphs used, not
  with the size of the font.

Only TrueType-outline fonts (`glyf`), without colour glyphs, symbol cmaps or a
missing `.notdef`, take this path; any other font goes through fpdf2's own
`add_font` and subsetting, unchanged.

The overrides lean on fpdf2 internals (the `TTFFont` slots, `SubsetMap`, the PDF
objects that `OutputProducer._add_fonts` writes for a TrueType font): they were
written against fpdf2 `PINNED_FPDF2` (requirements.txt). With another version
installed every font takes fpdf2's own path (slow but right) and a warning is
logged; tests/unit/test_invoice_pdf.py fails until this module is checked
against the new version.
"""

from __future__ import annotations

import copy
import logging
import math
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

from fontTools import ttLib
from fpdf import FPDF, FPDF_VERSION
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import (
    CIDSystemInfo,
    OutputProducer,
    PDFContentStream,
    PDFFont,
    PDFFontStream,
    _build_cmap_blocks,
    _tt_font_widths,
)
from fpdf.syntax import Name, PDFArray

log = logging.getLogger(__name__)

PINNED_FPDF2 = "2.8.9"
ENABLED = FPDF_VERSION == PINNED_FPDF2
if not ENABLED:
    log.warning("fpdf2 %s installed, billing_app.pdf.shared_fonts was written for %s: "
                "fonts are parsed and subset by fpdf2 for every PDF (slow)", FPDF_VERSION, PINNED_FPDF2)

# Tables copied as they are into every subset: hinting programs and values (the
# glyphs' instructions call them) and font-wide metrics. `head`, `hhea`, `maxp`
# are patched; `glyf`, `loca`, `hmtx`, `cmap`, `post`, `name` are written anew.
# Layout tables (GSUB, GPOS, kern...) are left out, as fpdf2's subsetting drops
# them too: the PDF places every glyph itself.
_COPIED_TABLES = ("OS/2", "cvt ", "fpgm", "prep", "gasp")
# The names fontTools' subsetter keeps by default: copyright, family, style, unique id,
# full name, version and PostScript name, Windows platform, English.
_NAME_IDS = range(7)
_NAME_PLATFORM, _NAME_LANGUAGE = 3, 0x0409

# Composite glyph component flags (OpenType spec, 'glyf' table).
_ARG_1_AND_2_ARE_WORDS = 0x0001
_WE_HAVE_A_SCALE = 0x0008
_MORE_COMPONENTS = 0x0020
_WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
_WE_HAVE_A_TWO_BY_TWO = 0x0080


class SharedFont:
    """One font file, parsed once; read-only after __init__, so shared by all threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # fpdf2 parses the file as it always does; the FPDF is only a scratch owner.
        template = TTFFont(FPDF(), path, "template", "")
        ttfont = template.ttfont
        try:
            self.fast = self._supported(template)
            if self.fast:
                self._load_tables(ttfont)
        finally:
            template.ttfont.close()
        template.ttfont = None  # document fonts never reach fontTools
        template._hbfont = None
        # A read-only copy of the widths: fpdf2's defaultdict adds every character it
        # is asked about, which shared between threads would be a dict changing size.
        template.cw = _Widths(template.cw, template.desc.missing_width)
        self.template = template

    @staticmethod
    def _supported(template: TTFFont) -> bool:
        ttfont = template.ttfont
        return ("glyf" in ttfont and "loca" in ttfont and not template.is_cff and template.color_font is None
                and not template.is_symbol and ttfont.getGlyphOrder()[0] == ".notdef")

    def _load_tables(self, ttfont: ttLib.TTFont) -> None:
        raw = {tag: ttfont.reader[tag] for tag in ttfont.reader.keys()}  # noqa: SIM118 (the reader has no __iter__)
        self.gid_by_name: dict[str, int] = ttfont.getReverseGlyphMap()
        num_glyphs = struct.unpack_from(">H", raw["maxp"], 4)[0]
        long_loca = struct.unpack_from(">h", raw["head"], 50)[0] == 1
        count = num_glyphs + 1
        if long_loca:
            self.loca = struct.unpack_from(f">{count}I", raw["loca"])
        else:
            self.loca = tuple(2 * offset for offset in struct.unpack_from(f">{count}H", raw["loca"]))
        self.glyf = raw["glyf"]
        num_metrics = struct.unpack_from(">H", raw["hhea"], 34)[0]
        metrics = struct.unpack_from(">" + "Hh" * num_metrics, raw["hmtx"])  # (advance, lsb) each
        advances, lsbs = list(metrics[0::2]), list(metrics[1::2])
        extra = num_glyphs - num_metrics  # glyphs with the last advance and just a side bearing
        lsbs += struct.unpack_from(f">{extra}h", raw["hmtx"], 4 * num_metrics)
        advances += [advances[-1]] * extra
        self.advances, self.lsbs = tuple(advances), tuple(lsbs)
        self.head, self.hhea, self.maxp = raw["head"], raw["hhea"], raw["maxp"]
        self.copied = {tag: raw[tag] for tag in _COPIED_TABLES if tag in raw}
        self.post = struct.pack(">I", 0x00030000) + raw["post"][4:32]  # format 3: no glyph names
        name = ttLib.newTable("name")
        name.names = [record for record in ttfont["name"].names if record.nameID in _NAME_IDS
                      and (record.platformID, record.langID) == (_NAME_PLATFORM, _NAME_LANGUAGE)]
        self.name = name.compile(ttfont)

    def document_font(self, pdf: FPDF, fontkey: str, style: str) -> DocumentFont:
        """A TTFFont of this font for one document: what fpdf2 changes per document is its own."""
        font = DocumentFont.__new__(DocumentFont)
        for cls in type(self.template).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(self.template, slot):
                    setattr(font, slot, getattr(self.template, slot))  # shared, read-only
        font.shared = self
        font.i = len(pdf.fonts) + 1
        font.fontkey = fontkey
        font.emphasis = type(self.template.emphasis).coerce(style)
        font.desc = copy.copy(self.template.desc)  # output() names it and gives it an object id
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.subset = SubsetMap(font)  # the glyphs this document uses
        return font

    def subset(self, used: Sequence[str], codes: dict[int, str]) -> tuple[bytes, dict[str, int]]:
        """A TrueType font of .notdef, the glyphs named `used` and their components.

        `codes` (character -> glyph name) becomes the subset's cmap. Returns the font
        file and each glyph name's glyph id in it.
        """
        wanted = {0, *(self.gid_by_name[name] for name in used)}
        pending = list(wanted)
        while pending:  # composite glyphs need their components
            for component in self._components(pending.pop()):
                if component not in wanted:
                    wanted.add(component)
                    pending.append(component)
        old_gids = sorted(wanted)
        new_gid = {old: new for new, old in enumerate(old_gids)}

        glyf, loca, boxes = bytearray(), [], []
        for old in old_gids:
            loca.append(len(glyf))
            data = self.glyf[self.loca[old]:self.loca[old + 1]]
            if len(data) >= 10:  # else an empty glyph (a space): no outline, no bounding box
                boxes.append((old, struct.unpack_from(">4h", data, 2)))  # xMin, yMin, xMax, yMax
            if len(data) >= 10 and struct.unpack_from(">h", data, 0)[0] < 0:
                data = bytearray(data)
                for position, component in _component_positions(data):
                    struct.pack_into(">H", data, position, new_gid[component])
            glyf += data
            glyf += b"\0" * (-len(glyf) % 4)
        loca.append(len(glyf))
        count = len(old_gids)

        short_loca = loca[-1] < 0x20000  # offsets are even: stored halved, in 16 bits
        # Font-wide extremes of the subset's glyphs, as fontTools' subsetter recomputes them.
        boxes = boxes or [(0, (0, 0, 0, 0))]
        head = bytearray(self.head)
        struct.pack_into(">I", head, 8, 0)  # checkSumAdjustment, set once the file is written
        struct.pack_into(">4h", head, 36, min(box[0] for _, box in boxes), min(box[1] for _, box in boxes),
                         max(box[2] for _, box in boxes), max(box[3] for _, box in boxes))
        struct.pack_into(">h", head, 50, 0 if short_loca else 1)  # indexToLocFormat
        hhea = bytearray(self.hhea)
        struct.pack_into(">Hhhh", hhea, 10, max(self.advances[old] for old in old_gids),
                         min(self.lsbs[old] for old, _ in boxes),
                         min(self.advances[old] - self.lsbs[old] - (box[2] - box[0]) for old, box in boxes),
                         max(self.lsbs[old] + box[2] - box[0] for old, box in boxes))
        struct.pack_into(">H", hhea, 34, count)  # numberOfHMetrics: one per glyph
        maxp = bytearray(self.maxp)
        struct.pack_into(">H", maxp, 4, count)
        hmtx = b"".join(struct.pack(">Hh", self.advances[old], self.lsbs[old]) for old in old_gids)
        cmap = _cmap({code: new_gid[self.gid_by_name[name]] for code, name in codes.items()})
        tables = {**self.copied, "head": bytes(head), "hhea": bytes(hhea), "maxp": bytes(maxp),
                  "hmtx": hmtx, "loca": _loca(loca, short_loca), "glyf": bytes(glyf),
                  "cmap": cmap, "post": self.post, "name": self.name}
        return _sfnt(tables), {name: new_gid[self.gid_by_name[name]] for name in used}

    def _components(self, gid: int) -> list[int]:
        start, end = self.loca[gid], self.loca[gid + 1]
        if end - start < 10 or struct.unpack_from(">h", self.glyf, start)[0] >= 0:
            return []
        return [component for _, component in _component_positions(self.glyf[start:end])]


def _loca(offsets: list[int], short: bool) -> bytes:
    if short:
        return struct.pack(f">{len(offsets)}H", *(offset // 2 for offset in offsets))
    return struct.pack(f">{len(offsets)}I", *offsets)


def _component_positions(glyph: bytes | bytearray) -> list[tuple[int, int]]:
    """(offset of the glyph index, glyph index) of each component of a composite glyph."""
    found, position = [], 10
    while True:
        flags, component = struct.unpack_from(">HH", glyph, position)
        found.append((position + 2, component))
        position += 4 + (4 if flags & _ARG_1_AND_2_ARE_WORDS else 2)
        if flags & _WE_HAVE_A_SCALE:
            position += 2
        elif flags & _WE_HAVE_AN_X_AND_Y_SCALE:
            position += 4
        elif flags & _WE_HAVE_A_TWO_BY_TWO:
            position += 8
        if not flags & _MORE_COMPONENTS:
            return found


def _cmap(glyph_by_code: dict[int, int]) -> bytes:
    """A cmap table: format 4 (Windows BMP), plus format 12 when a code is beyond the BMP."""
    codes = sorted(code for code in glyph_by_code if 0 < code)
    segments: list[list[int]] = []  # [start, end, delta]
    for code in (code for code in codes if code <= 0xFFFF):
        delta = glyph_by_code[code] - code
        if segments and segments[-1][1] == code - 1 and segments[-1][2] == delta:
            segments[-1][1] = code
        else:
            segments.append([code, code, delta])
    segments.append([0xFFFF, 0xFFFF, 1])
    count = len(segments)
    selector = int(math.log2(count))
    search = 2 * 2**selector
    format4 = b"".join((
        struct.pack(">7H", 4, 16 + 8 * count, 0, 2 * count, search, selector, 2 * count - search),
        struct.pack(f">{count}H", *(end for _, end, _ in segments)),
        b"\0\0",
        struct.pack(f">{count}H", *(start for start, _, _ in segments)),
        struct.pack(f">{count}H", *(delta & 0xFFFF for _, _, delta in segments)),
        b"\0\0" * count,  # idRangeOffset: none, idDelta does it all
    ))
    subtables = [((3, 1), format4)]
    if codes and codes[-1] > 0xFFFF:
        groups = b"".join(struct.pack(">3I", code, code, glyph_by_code[code]) for code in codes)
        subtables.append(((3, 10), struct.pack(">HHIII", 12, 0, 16 + len(groups), 0, len(codes)) + groups))
    header = struct.pack(">HH", 0, len(subtables))
    offset = 4 + 8 * len(subtables)
    records = b""
    for (platform, encoding), data in subtables:
        records += struct.pack(">HHI", platform, encoding, offset)
        offset += len(data)
    return header + records + b"".join(data for _, data in subtables)


def _checksum(data: bytes) -> int:
    data += b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(data) // 4}I", data)) & 0xFFFFFFFF


def _sfnt(tables: dict[str, bytes]) -> bytes:
    """A TrueType font file of `tables`, with checksums and head.checkSumAdjustment set."""
    tags = sorted(tables, key=lambda tag: tag.encode("ascii"))
    count = len(tags)
    selector = int(math.log2(count))
    search = 16 * 2**selector
    directory = [struct.pack(">IHHHH", 0x00010000, count, search, selector, 16 * count - search)]
    body, offset, head_offset = [], 12 + 16 * count, 0
    for tag in tags:
        data = tables[tag]
        directory.append(struct.pack(">4sIII", tag.encode("ascii"), _checksum(data), offset, len(data)))
        if tag == "head":
            head_offset = offset
        body.append(data + b"\0" * (-len(data) % 4))
        offset += len(body[-1])
    font = bytearray(b"".join(directory + body))
    struct.pack_into(">I", font, head_offset + 8, (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF)
    return bytes(font)


class _Widths(dict):
    """Character widths that, unlike fpdf2's defaultdict, are not added to when read."""

    def __init__(self, widths: dict[int, float], default: float) -> None:
        super().__init__(widths)
        self.default = default

    def __missing__(self, key: int) -> float:
        return self.default


class DocumentFont(TTFFont):
    """fpdf2's TTFFont of one document whose parsed data comes from a SharedFont."""

    __slots__ = ("shared",)

    def get_text_width(self, text, font_size_pt, text_shaping_params):
        # fpdf2's line breaking measures each line again for every character added to
        # it: this is TTFFont.get_text_width without the symbol-font mapping (not for
        # these fonts) and with the widths summed by map() rather than a generator.
        if text_shaping_params:
            return super().get_text_width(text, font_size_pt, text_shaping_params)
        self.biggest_size_pt = max(self.biggest_size_pt, font_size_pt)
        return len(text), sum(map(self.cw.__getitem__, map(ord, text))) * font_size_pt * 0.001


_fonts: dict[str, SharedFont] = {}
_loading: dict[str, threading.Lock] = {}
_lock = threading.Lock()


def shared_font(path: str | Path) -> SharedFont:
    """The font at `path`, parsed on first use in this process; raises as fontTools does
    on a file that is not a font (and tries again next time)."""
    key = str(Path(path).resolve())
    font = _fonts.get(key)
    if font is None:
        with _lock:
            loading = _loading.setdefault(key, threading.Lock())
        with loading:  # one thread parses a file, others wait for it; other files go on
            font = _fonts.get(key)
            if font is None:
                font = _fonts[key] = SharedFont(Path(key))
    return font


class SharedFontsPDF(FPDF):
    """An FPDF whose add_font() (family, style, file) shares the parsed fonts across documents."""

    def add_font(self, family=None, style="", fname=None, **options) -> None:
        style = "".join(sorted(style.upper()))
        if not ENABLED or options or self._compliance or not family or not fname or not Path(fname).is_file() \
                or f"{family.lower()}{style}" in self.fonts or any(letter not in "BI" for letter in style):
            super().add_font(family, style, fname, **options)  # fpdf2's own checks, errors and warnings
            return
        font = shared_font(fname)
        if not font.fast:
            super().add_font(family, style, fname)
            return
        fontkey = f"{family.lower()}{style}"
        self.fonts[fontkey] = font.document_font(self, fontkey, style)

    def output(self, *args, **kwargs):
        kwargs.setdefault("output_producer_class", _OutputProducer)
        return super().output(*args, **kwargs)


class _OutputProducer(OutputProducer):
    """Embeds DocumentFonts with SharedFont.subset; fpdf2 embeds all other fonts.

    `_embed` writes the same PDF objects as fpdf2 2.8.9's `_add_fonts` does for a
    TrueType font (Type0 font, CIDFontType2, ToUnicode CMap, CIDSystemInfo, font
    descriptor, CIDToGIDMap, FontFile2), with the subset made here. PDF/A-1's
    CIDSet is not written: a PDF/A document gets fpdf2's own fonts (add_font).
    """

    def _add_fonts(self, image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name):
        fonts = self.fpdf.fonts  # the document's font registry (a read-only property of FPDF)
        ours = {key: font for key, font in fonts.items() if isinstance(font, DocumentFont)}
        if not ours:
            return super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name)
        objects = {}
        if len(ours) < len(fonts):
            # fpdf2 embeds every font of the registry: hide ours from it meanwhile.
            registry = dict(fonts)
            for key in ours:
                del fonts[key]
            try:
                objects = super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name)
            finally:
                fonts.clear()
                fonts.update(registry)
        for font in sorted(ours.values(), key=lambda font: font.i):
            objects[font.i] = self._embed(font)
        return objects

    def _embed(self, font: DocumentFont) -> PDFFont:
        fontname = f"MPDFAA+{font.name}"
        if font.missing_glyphs:
            log.warning("Font %s is missing the following glyphs: %s", fontname,
                        ", ".join(repr(chr(code)) for code in font.missing_glyphs[:10]))
        glyphs = [glyph for glyph, _ in font.subset.items() if glyph is not None]
        codes = {glyph.unicode[0]: glyph.glyph_name for glyph in glyphs
                 if isinstance(glyph.unicode, tuple) and len(glyph.unicode) == 1}
        font_file, gids = font.shared.subset([glyph.glyph_name for glyph in glyphs], codes)

        composite = PDFFont(subtype="Type0", base_font=fontname, encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        cid_font = PDFFont(subtype="CIDFontType2", base_font=fontname, d_w=font.desc.missing_width,
                           w=_tt_font_widths(font))
        self._add_pdf_obj(cid_font, "fonts")
        composite.descendant_fonts = PDFArray([cid_font])

        # ToUnicode: the text each character id stands for, to search and copy text.
        bf_chars = [f"<{char_id:04X}> <{''.join(_utf16_hex(code) for code in glyph.unicode)}>\n"
                    for glyph, char_id in font.subset.items()
                    if glyph is not None and isinstance(glyph.unicode, tuple) and glyph.unicode]
        to_unicode = PDFContentStream((
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo\n<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            f"{_build_cmap_blocks(bf_chars, 'bfchar')}"
            "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
        ).encode("latin-1"))
        self._add_pdf_obj(to_unicode, "fonts")
        composite.to_unicode = to_unicode

        system_info = CIDSystemInfo()
        self._add_pdf_obj(system_info, "fonts")
        cid_font.c_i_d_system_info = system_info

        descriptor = font.desc
        descriptor.font_name = Name(fontname)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor

        # Character id -> glyph id in the subset, 2 bytes each. fpdf2 writes all 65536 ids;
        # the ids up to the highest one used are enough (a reader maps any id beyond the
        # map to glyph 0) and save compressing 128 KB per font.
        char_ids = [(char_id, gids[glyph.glyph_name]) for glyph, char_id in font.subset.items() if glyph is not None]
        cid_to_gid = bytearray(2 * (max(char_id for char_id, _ in char_ids) + 1))
        for char_id, gid in char_ids:
            struct.pack_into(">H", cid_to_gid, 2 * char_id, gid)
        cid_to_gid_map = PDFContentStream(contents=bytes(cid_to_gid), compress=True)
        self._add_pdf_obj(cid_to_gid_map, "fonts")
        cid_font.c_i_d_to_g_i_d_map = cid_to_gid_map

        font_stream = PDFFontStream(contents=font_file)
        self._add_pdf_obj(font_stream, "fonts")
        descriptor.font_file2 = font_stream

        # As fpdf2 does once a font is written: these functools caches hold every SubsetMap.
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        return composite


def _utf16_hex(code: int) -> str:
    if code > 0xFFFF:  # a surrogate pair
        return f"{0xD800 | (code - 0x10000) >> 10:04X}{0xDC00 | (code & 0x3FF):04X}"
    return f"{code:04X}"
