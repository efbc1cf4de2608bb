# SPDX-License-Identifier: BSD-3-Clause
"""Fast reading of a FITS file's structure: header blocks, card values, HDU layout.

``astropy.io.fits`` parses each card through its configuration system (about 10 us a card,
5 ms for a four-plane Level-2 file); opening a file lazily needs only the cards' values and
where each HDU's data start. This module reads the 2880-byte header blocks itself and parses
standard cards with one regular expression each, giving exactly astropy's values. Whatever it
does not reproduce exactly makes the caller fall back to astropy: ``CONTINUE`` long strings,
record-valued cards, strings holding quotes, complex or non-standard numbers
(:func:`parse_cards` returns ``None``), and compressed images, random groups or odd file
layouts (:func:`scan_layout` returns ``None``).
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from ...errors import FormatterError
from ._headers import cards_to_attrs

__all__ = [
    "BinaryTable",
    "FitsHeader",
    "RawHdu",
    "is_truncated",
    "parse_cards",
    "read_header_text",
    "scan_layout",
]

logger = logging.getLogger(__name__)

BLOCK = 2880
CARD = 80
_END = b"END" + b" " * 77
_MAX_HEADER_BLOCKS = 1000
_COMMENTARY = frozenset({"", "COMMENT", "HISTORY"})
_KEY_RE = re.compile(r"[A-Z0-9_-]{1,8}\Z")
#: A standard (FSC) value field: a quote-free string, a logical, an integer or a real,
#: then blanks and an optional comment. Anything else is left to astropy.
_VALUE_RE = re.compile(
    r" *(?:'(?P<s>[ -&(-~]*)'|(?P<b>[TF])|(?P<i>[+-]?\d+)"
    r"|(?P<f>[+-]?(?:\.\d+|\d+(?:\.\d*)?)(?:[DE][+-]?\d+)?))? *(?:/.*)?\Z"
)
#: A string astropy may read as a record-valued keyword card ('AXIS.1: 1').
_RVKC_RE = re.compile(r"[a-zA-Z_][\w.]*: ")


def parse_cards(
    text: str, keys: Container[str] | None = None
) -> tuple[tuple[str, Any], ...] | None:
    """(keyword, value) of each card of a header (without its END card), as astropy reads them.

    Values are ``str`` (trailing blanks removed), ``bool``, ``int``, ``float`` or ``None``
    (undefined); commentary cards (``COMMENT``, ``HISTORY``, blank keyword) give their text.
    Returns ``None`` when a card needs astropy's full parser. With ``keys``, only the cards of
    those keywords are parsed and returned (the others are not looked at).

    Examples
    --------
    >>> parse_cards("BUNIT   = 'MJy/sr  '           / unit".ljust(80) + "NAXIS   =                    2".ljust(80))
    (('BUNIT', 'MJy/sr'), ('NAXIS', 2))
    >>> parse_cards("LONG    = 'a&'".ljust(80) + "CONTINUE  'b'".ljust(80)) is None
    True
    >>> parse_cards("LONG    = 'a&'".ljust(80) + "NAXIS   =                    2".ljust(80), {"NAXIS"})
    (('NAXIS', 2),)
    """
    cards: list[tuple[str, Any]] = []
    append, match, is_key = cards.append, _VALUE_RE.match, _KEY_RE.match
    for start in range(0, len(text), CARD):
        card = text[start : start + CARD]
        key = card[:8].rstrip()
        if keys is not None and key not in keys and key != "HIERARCH":
            continue
        if key in _COMMENTARY:
            append((key, card[8:].rstrip()))
            continue
        if card[8:10] == "= " and is_key(key) and key != "CONTINUE":
            m = match(card, 10)
        elif key == "HIERARCH":
            key, m = _hierarch(card)
            if keys is not None and key not in keys:
                continue
        else:
            return None
        if m is None:
            return None
        kind = m.lastgroup
        if kind is None:
            value: Any = None
        elif kind == "s":
            string = m.group("s")
            if string.endswith("&") or (":" in string and _RVKC_RE.match(string)):
                return None
            value = string.rstrip()
        elif kind == "i":
            value = int(m.group("i"))
        elif kind == "f":
            value = float(m.group("f").replace("D", "E"))
        else:
            value = m.group("b") == "T"
        append((key, value))
    return tuple(cards)


def _hierarch(card: str) -> tuple[str, re.Match[str] | None]:
    """Keyword (case kept, as astropy) and value match of an ESO ``HIERARCH name = value`` card."""
    equals = card.find("=")
    key = card[9:equals].strip() if card[8] == " " and equals > 9 else ""
    return key, (_VALUE_RE.match(card, equals + 1) if key else None)


def _astropy_cards(text: str) -> tuple[tuple[str, Any], ...]:
    """Cards of a header through astropy (undefined values become ``None``)."""
    from astropy.io import fits

    header = fits.Header.fromstring(text)
    undefined = fits.card.Undefined
    return tuple(
        (card.keyword, None if isinstance(card.value, undefined) else card.value)
        for card in header.cards
    )


class FitsHeader(Mapping[str, Any]):
    """A header as (keyword, value) cards; as a mapping, keyword -> first value.

    Examples
    --------
    >>> h = FitsHeader.parse("BITPIX  =                  -32".ljust(80) + "HISTORY a".ljust(80))
    >>> h["BITPIX"], "NAXIS" in h, h.attrs()
    (-32, False, {'HISTORY': 'a'})
    """

    __slots__ = ("_values", "cards", "text")

    def __init__(self, text: str, cards: tuple[tuple[str, Any], ...]) -> None:
        self.text = text
        self.cards = cards
        values: dict[str, Any] = {}
        for key, value in cards:
            values.setdefault(key, value)
        self._values = values

    @classmethod
    def parse(cls, text: str) -> FitsHeader:
        """Parse header text (80-character cards, END excluded), through astropy if needed."""
        cards = parse_cards(text)
        return cls(text, cards if cards is not None else _astropy_cards(text))

    @classmethod
    def from_astropy(cls, header: Any) -> FitsHeader:
        """The same header as an ``astropy.io.fits.Header``."""
        text = header.tostring()
        return cls.parse(text[: text.rfind("END" + " " * 77)] if text else text)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FitsHeader, (self.text, self.cards))

    def attrs(self) -> dict[str, Any]:
        """The header as xarray attrs (see :func:`~._headers.header_to_attrs`)."""
        return cards_to_attrs(self.cards)

    def to_astropy(self) -> Any:
        """An ``astropy.io.fits.Header`` with the same cards (comments included)."""
        from astropy.io import fits

        return fits.Header.fromstring(self.text)


EMPTY_HEADER = FitsHeader("", ())


@dataclass(frozen=True)
class RawHdu:
    """One HDU found by :func:`scan_layout`: its header and where its data lie."""

    index: int
    header: FitsHeader
    header_offset: int
    data_offset: int
    data_size: int

    @property
    def name(self) -> str:
        """EXTNAME (``PRIMARY`` for an unnamed first HDU), as astropy names a read HDU."""
        name = self.header.get("EXTNAME")
        if isinstance(name, str):
            return name
        return "PRIMARY" if self.index == 0 else ""


def read_header_text(f: BinaryIO, offset: int) -> str | None:
    """Text of the header at ``offset`` up to its END card; ``None`` if astropy should judge.

    A header cut short by the end of the file, or not ASCII, is left to astropy, whose
    error or warning the caller reports.
    """
    f.seek(offset)
    blocks: list[bytes] = []
    for _ in range(_MAX_HEADER_BLOCKS):
        block = f.read(BLOCK)
        if len(block) < BLOCK:
            return None
        at = block.find(_END)
        while at >= 0 and at % CARD:
            at = block.find(_END, at + 1)
        if at >= 0:
            blocks.append(block[:at])
            try:
                return b"".join(blocks).decode("ascii")
            except UnicodeDecodeError:
                return None
        blocks.append(block)
    return None


def _padded(nbytes: int) -> int:
    """``nbytes`` rounded up to whole 2880-byte blocks (a header's or data's span on disk)."""
    return -(-nbytes // BLOCK) * BLOCK


def _data_size(header: Mapping[str, Any], primary: bool) -> int | None:
    """Bytes of data of an HDU, ``None`` for layouts left to astropy (random groups)."""
    try:
        naxis = int(header["NAXIS"])
        bitpix = int(header["BITPIX"])
        dims = [int(header[f"NAXIS{i}"]) for i in range(1, naxis + 1)]
        pcount = int(header.get("PCOUNT", 0) or 0)
        gcount = int(header.get("GCOUNT", 1) or 1)
    except (KeyError, TypeError, ValueError):
        return None
    if primary and header.get("GROUPS") is True:
        return None
    if naxis == 0:
        return 0
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(dims))


def scan_layout(f: BinaryIO, size: int, path: str) -> list[RawHdu] | None:
    """Headers and data locations of every HDU of an open file of ``size`` bytes.

    Returns ``None`` when astropy should read the file instead (not starting with ``SIMPLE``,
    a compressed image, random groups, unusual padding or a header it must parse).

    Raises
    ------
    FormatterError
        If an image's data reach past the end of the file.
    """
    hdus: list[RawHdu] = []
    offset = 0
    while offset < size:
        text = read_header_text(f, offset)
        if text is None or (not hdus and not text.startswith("SIMPLE  =")):
            return None
        header = FitsHeader.parse(text)
        data_offset = offset + _padded(len(text) + CARD)
        data_size = _data_size(header, primary=not hdus)
        if data_size is None or (hdus and header.get("XTENSION") is None):
            return None
        if header.get("ZIMAGE") is True:
            return None  # tile-compressed image: astropy decodes it
        hdu = RawHdu(len(hdus), header, offset, data_offset, data_size)
        if data_offset + data_size > size:
            if hdu.index == 0 or header.get("XTENSION") == "IMAGE":
                raise FormatterError(
                    f"FITS file {path!r} is truncated: HDU {hdu.index} ({hdu.name}) needs "
                    f"{data_offset + data_size} bytes, the file has {size}."
                )
            return None
        hdus.append(hdu)
        offset = data_offset + _padded(data_size)
    return hdus


class _StructuralKeys:
    """The keywords that say how long an HDU's data are (see `_data_size`), as the ``keys``
    of :func:`parse_cards`: a fixed few and every ``NAXISn``."""

    _FIXED = frozenset({"XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "GROUPS"})

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (
            key in self._FIXED or (key.startswith("NAXIS") and key[5:].isdigit())
        )


_STRUCTURAL = _StructuralKeys()


def _structural_cards(text: str) -> dict[str, Any] | None:
    """The structural keywords of a header's text (``None`` if one needs astropy)."""
    fixed = _fixed_structure(text)
    if fixed is not None:
        return fixed
    cards = parse_cards(text, _STRUCTURAL)
    return None if cards is None else dict(cards)


def _fixed_structure(text: str) -> dict[str, int] | None:
    """The structural keywords where the standard puts them: first, in a fixed order
    (``BITPIX``, ``NAXIS``, ``NAXISn``, then ``PCOUNT`` and ``GCOUNT`` in an extension), with
    fixed-format integer values (columns 11-30). ``None`` for any other header, and for
    random groups."""

    def value(index: int, key: str) -> int:
        card = text[index * CARD : (index + 1) * CARD]
        if card[:8].rstrip() != key or card[8:10] != "= ":
            raise ValueError(key)
        return int(card[10:30])

    try:
        cards = {"BITPIX": value(1, "BITPIX"), "NAXIS": value(2, "NAXIS")}
        naxis = cards["NAXIS"]
        for i in range(1, naxis + 1):
            cards[f"NAXIS{i}"] = value(2 + i, f"NAXIS{i}")
        if text.startswith("XTENSION"):
            cards["PCOUNT"] = value(3 + naxis, "PCOUNT")
            cards["GCOUNT"] = value(4 + naxis, "GCOUNT")
        elif naxis and cards["NAXIS1"] == 0:
            return None  # random groups: GROUPS, PCOUNT and GCOUNT may follow anywhere
    except ValueError:
        return None
    return cards


def is_truncated(f: BinaryIO, size: int) -> bool:
    """Whether an open FITS file of ``size`` bytes is cut short.

    Cut short: a header ends without its ``END`` card, or an HDU's data reach past the end
    of the file. Only the headers are read, and only their structural keywords parsed (about
    a tenth of :func:`scan_layout`'s time); what this cannot judge (unusual values, random
    groups) counts as whole, for the reader to report. Missing final padding alone is not
    truncation (astropy reads such files).

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> buffer = io.BytesIO()
    >>> fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((40, 40)))]).writeto(buffer)
    >>> data = buffer.getvalue()
    >>> is_truncated(io.BytesIO(data), len(data))
    False
    >>> is_truncated(io.BytesIO(data[:-2880]), len(data) - 2880)
    True
    """
    offset, primary = 0, True
    while offset < size:
        text = read_header_text(f, offset)
        if text is None:
            return _header_cut_short(f, offset, primary)
        header = _structural_cards(text)
        data_size = None if header is None else _data_size(header, primary)
        if data_size is None:
            return False
        data_offset = offset + _padded(len(text) + CARD)
        if data_offset + data_size > size:
            return True
        offset = data_offset + _padded(data_size)
        primary = False
    return False


def _header_cut_short(f: BinaryIO, offset: int, primary: bool) -> bool:
    """Whether the bytes from ``offset`` are an HDU that the end of the file cuts short: a
    header without its ``END`` card, or a header whose data are missing (rather than zero or
    blank padding, or a header :func:`read_header_text` left aside)."""
    f.seek(offset)
    tail = f.read(_MAX_HEADER_BLOCKS * BLOCK)
    if not tail.strip(b"\0 ") or len(tail) == _MAX_HEADER_BLOCKS * BLOCK:
        return False
    end = next((at for at in range(0, len(tail), CARD) if tail.startswith(_END, at)), None)
    if end is None:
        return True
    header = _structural_cards(tail[:end].decode("ascii", "replace"))
    return bool(header is not None and _data_size(header, primary))


#: TFORM type code -> big-endian numpy type, for the binary-table columns read here.
_TFORM_TYPES = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
_TFORM_RE = re.compile(r"\s*(\d*)([BIJKED])\s*\Z")
_TDIM_RE = re.compile(r"\(\s*(\d+(?:\s*,\s*\d+)*)\s*\)\Z")


@dataclass(frozen=True, eq=False)
class BinaryTable:
    """A small binary table HDU held in memory (the spectral WCS lookup table).

    Numeric fixed-width columns are decoded with numpy; anything else (scaled, string,
    bit or variable-length columns) through astropy.
    """

    header: FitsHeader
    header_bytes: bytes
    data: bytes

    @functools.cached_property
    def _dtype(self) -> np.dtype | None:
        """The row dtype when numpy can decode every column, else ``None``."""
        fields = []
        for i in range(1, int(self.header.get("TFIELDS", 0)) + 1):
            match = _TFORM_RE.match(str(self.header.get(f"TFORM{i}", "")))
            if match is None or f"TSCAL{i}" in self.header or f"TZERO{i}" in self.header:
                return None
            repeat = int(match.group(1) or 1)
            shape: tuple[int, ...] = (repeat,) if repeat != 1 else ()
            tdim = self.header.get(f"TDIM{i}")
            if tdim is not None:
                dims = _TDIM_RE.match(str(tdim))
                if dims is None:
                    return None
                shape = tuple(int(d) for d in reversed(dims.group(1).split(",")))
                if int(np.prod(shape)) != repeat:
                    return None
            name = str(self.header.get(f"TTYPE{i}", f"col{i}"))
            fields.append((name, _TFORM_TYPES[match.group(2)], shape))
        dtype = np.dtype(fields)
        return dtype if dtype.itemsize == int(self.header.get("NAXIS1", -1)) else None

    def column(self, name: str) -> np.ndarray:
        """Column ``name`` (case-insensitive), one entry per row, shaped by ``TDIMn``.

        Raises
        ------
        KeyError
            If the table has no such column.
        """
        dtype = self._dtype
        if dtype is None:
            return np.asarray(self.to_hdu().data[name])
        rows = int(self.header.get("NAXIS2", 0))
        table = np.frombuffer(self.data, dtype=dtype, count=rows)
        names = {n.upper(): n for n in reversed(dtype.names or ())}
        return table[names[name.upper()]]

    def to_hdu(self) -> Any:
        """The table as an ``astropy.io.fits.BinTableHDU``."""
        from astropy.io import fits

        padding = b"\0" * (-len(self.data) % BLOCK)
        return fits.BinTableHDU.fromstring(self.header_bytes + self.data + padding)
