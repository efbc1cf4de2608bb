# SPDX-License-Identifier: BSD-3-Clause
"""The fast FITS structure scanner reads headers, layouts and tables exactly as astropy does."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from spherex_dask.io.formatters._fits_scan import (
    BinaryTable,
    FitsHeader,
    is_truncated,
    parse_cards,
    scan_layout,
)
from spherex_dask.io.formatters._headers import header_to_attrs

from .conftest import write_level2

_keys = st.from_regex(r"[A-Z][A-Z0-9_-]{0,7}", fullmatch=True).filter(
    lambda k: k not in {"END", "COMMENT", "HISTORY", "CONTINUE", "HIERARCH"}
)
_values = st.one_of(
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
)


def _text(header: fits.Header) -> str:
    """Header card images without the END card and padding."""
    text = header.tostring()
    return text[: text.rfind("END" + " " * 77)]


def _astropy(header: fits.Header) -> list[tuple[str, object]]:
    undefined = fits.card.Undefined
    return [(c.keyword, None if isinstance(c.value, undefined) else c.value) for c in header.cards]


@settings(max_examples=60, deadline=None)
@given(
    cards=st.lists(st.tuples(_keys, _values), max_size=12),
    history=st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=70)),
)
def test_cards_match_astropy(cards: list, history: list) -> None:
    """Random headers (long strings, quotes, undefined values...) read like astropy reads them."""
    header = fits.Header()
    for key, value in cards:
        header.append((key, value))
    for line in history:
        header.add_history(line)
    header["HIERARCH MP_HOT"] = 10
    text = _text(header)
    expected = fits.Header.fromstring(text)  # as written: floats rounded to 20 characters
    parsed = FitsHeader.parse(text)
    assert list(parsed.cards) == _astropy(expected)
    assert parsed.attrs() == header_to_attrs(expected)
    for key, _ in cards:
        value = expected[key]  # the first of repeated keywords
        assert parsed[key] == (None if isinstance(value, fits.card.Undefined) else value)


def test_unusual_cards_are_left_to_astropy() -> None:
    """CONTINUE, record-valued, quoted and complex cards make the fast parser step aside."""
    plain = fits.Card("EXPTIME", 112.5, "s").image
    assert parse_cards(plain) == (("EXPTIME", 112.5),)
    assert parse_cards("RATE    =               1.5D-3".ljust(80)) == (("RATE", 0.0015),)
    for card in (
        fits.Card("LONG", "x" * 100).image,  # CONTINUE
        "DP1     = 'AXIS.1: 1'".ljust(80),  # record-valued keyword card
        "NOTE    = 'it''s'".ljust(80),
        "Z       = (1.0, 2.0)".ljust(80),
        "LOWER   =               1.5e-3".ljust(80),
        "lower   =                    1".ljust(80),
    ):
        assert parse_cards(card) is None, card
        header = fits.Header.fromstring(card)
        assert FitsHeader.parse(card).attrs() == header_to_attrs(header)


def _odd_layout(path: Path) -> None:
    """Lower-case names, an ASCII table, a cube and an empty extension."""
    ascii_table = fits.TableHDU.from_columns(
        [fits.Column(name="A", format="I5", array=np.arange(3))], name="notes"
    )
    fits.HDUList(
        [
            fits.PrimaryHDU(np.ones((3, 5), np.int16)),
            fits.ImageHDU(np.ones((2, 3, 4), np.float64), name="cube"),
            ascii_table,
            fits.ImageHDU(name="EMPTY"),
            fits.ImageHDU(np.ones((3, 5), np.uint16), name="mask"),
        ]
    ).writeto(path)


@pytest.mark.parametrize("make", [write_level2, _odd_layout])
def test_layout_matches_astropy(tmp_path: Path, make) -> None:
    """Names, header and data offsets of every HDU equal astropy's."""
    path = tmp_path / "layout.fits"
    make(path)
    with open(path, "rb") as f, fits.open(path) as hdul:
        hdus = scan_layout(f, path.stat().st_size, str(path))
        assert hdus is not None
        assert [h.name for h in hdus] == [h.name for h in hdul]
        for raw, hdu in zip(hdus, hdul, strict=True):
            info = hdu.fileinfo()
            assert (raw.header_offset, raw.data_offset) == (info["hdrLoc"], info["datLoc"])
            assert raw.data_size == info["datSpan"] - (-raw.data_size % 2880)
            assert raw.header.attrs() == header_to_attrs(hdu.header)


def test_layout_leaves_compressed_files_to_astropy(tmp_path: Path) -> None:
    path = tmp_path / "comp.fits"
    fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(np.ones((8, 8), np.float32), name="IMAGE")]
    ).writeto(path)
    with open(path, "rb") as f:
        assert scan_layout(f, path.stat().st_size, str(path)) is None
    cut = tmp_path / "cut.fits"
    cut.write_bytes(path.read_bytes()[:4000])
    with open(cut, "rb") as f:
        assert scan_layout(f, 4000, str(cut)) is None  # a header cut short: astropy reports it


def _table_bytes(hdu: fits.BinTableHDU) -> tuple[FitsHeader, bytes, bytes]:
    """The table's header, header bytes and data bytes as stored in a file."""
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(buffer)
    with fits.open(io.BytesIO(buffer.getvalue())) as hdul:
        info = hdul[1].fileinfo()
        header = hdul[1].header
    raw = buffer.getvalue()
    data = raw[info["datLoc"] : info["datLoc"] + header["NAXIS1"] * header["NAXIS2"]]
    return FitsHeader.parse(_text(header)), raw[info["hdrLoc"] : info["datLoc"]], data


def test_binary_table_columns_match_astropy() -> None:
    """Numeric columns (with TDIM) decode with numpy; scaled or string ones through astropy."""
    values = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 4, 3, 2)
    columns = [
        fits.Column(name="X", format="3J", array=np.array([[1, 2, 3]], np.int32)),
        fits.Column(name="VALUES", format="24E", dim="(2,3,4)", array=values),
        fits.Column(name="ONE", format="D", array=np.array([2.5])),
    ]
    hdu = fits.BinTableHDU.from_columns(columns, name="WCS-WAVE")
    table = BinaryTable(*_table_bytes(hdu))
    assert table._dtype is not None
    for name in ("X", "values", "ONE"):
        np.testing.assert_array_equal(table.column(name), hdu.data[name])
    scaled = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="S", format="I", array=np.array([4, 8], np.int16)),
            fits.Column(name="NAME", format="4A", array=np.array(["ab", "cd"])),
        ]
    )
    scaled.header["TSCAL1"], scaled.header["TZERO1"] = 0.5, 1.0
    table = BinaryTable(*_table_bytes(scaled))
    assert table._dtype is None
    np.testing.assert_array_equal(table.column("S"), [3.0, 5.0])
    assert list(table.column("NAME")) == ["ab", "cd"]
    with pytest.raises(KeyError):
        BinaryTable(*_table_bytes(hdu)).column("MISSING")


def _file_bytes(*hdus: fits.hdu.base._BaseHDU) -> bytes:
    buffer = io.BytesIO()
    fits.HDUList(list(hdus)).writeto(buffer)
    return buffer.getvalue()


def _truncated(data: bytes) -> bool:
    return is_truncated(io.BytesIO(data), len(data))


def test_is_truncated_finds_every_cut() -> None:
    """A cut anywhere in a header or in data is found; a whole file, one without its final
    padding, or one with zero padding appended is whole."""
    image = fits.ImageHDU(np.arange(3000, dtype=">f4").reshape(50, 60), name="IMAGE")
    table = fits.BinTableHDU.from_columns([fits.Column("X", "E", array=np.arange(5.0))])
    data = _file_bytes(fits.PrimaryHDU(), image, table)
    hdus = scan_layout(io.BytesIO(data), len(data), "f")
    assert hdus is not None
    assert not _truncated(data)
    ends = [h.data_offset + h.data_size for h in hdus]
    assert not _truncated(data[: ends[-1]])  # final padding missing only
    assert not _truncated(data + b"\0" * 100)
    # (a cut between two HDUs leaves a shorter, valid file: not detectable here)
    for cut in (100, hdus[1].header_offset + 80, hdus[1].data_offset + 7, ends[1] - 1,
                hdus[2].header_offset + 2000, ends[2] - 1):
        assert _truncated(data[:cut]), cut


def test_is_truncated_reads_unusual_headers_card_by_card() -> None:
    """Structural keywords out of the standard's order (or in free format) are still read."""
    data = bytearray(_file_bytes(fits.PrimaryHDU(np.zeros((20, 30), dtype=">i2"))))
    cards = [data[i : i + 80] for i in range(0, 2880, 80)]
    naxis2 = next(i for i, c in enumerate(cards) if c.startswith(b"NAXIS2"))
    cards[naxis2] = b"NAXIS2  =     20 / free format".ljust(80)
    cards.insert(naxis2 + 1, cards.pop(naxis2 - 1))  # NAXIS1 after NAXIS2
    data[:2880] = b"".join(cards)
    fits.open(io.BytesIO(bytes(data))).close()  # astropy reads it
    assert not _truncated(bytes(data))
    assert _truncated(bytes(data[: 2880 + 20 * 30 * 2 - 1]))
