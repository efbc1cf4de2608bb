"""The fast primary-header scan agrees with astropy, and falls back to it when unsure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from spherex_dask.errors import FormatterError
from spherex_dask.io import read_primary_header

_keys = st.from_regex(r"[A-Z][A-Z0-9_-]{0,7}", fullmatch=True).filter(
    lambda k: k not in {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "END", "COMMENT", "HISTORY"}
)
_values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40).map(str.rstrip),
)


@settings(max_examples=40, deadline=None)
@given(cards=st.dictionaries(_keys, _values, max_size=12))
def test_matches_astropy(tmp_path_factory: pytest.TempPathFactory, cards: dict) -> None:
    """Random primary headers read the same as astropy.io.fits.getheader."""
    path = tmp_path_factory.mktemp("h") / "f.fits"
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    fits.HDUList([fits.PrimaryHDU(header=header), fits.ImageHDU(np.zeros((2, 2)))]).writeto(path)
    assert read_primary_header(path) == dict(fits.getheader(path, 0))


def test_not_fits_is_a_clear_error(tmp_path: Path) -> None:
    """A file that is not FITS raises FormatterError naming it."""
    path = tmp_path / "junk.fits"
    path.write_bytes(b"hello" * 1000)
    with pytest.raises(FormatterError, match=r"junk\.fits"):
        read_primary_header(path)


def test_truncated_header_falls_back(tmp_path: Path) -> None:
    """A header cut before END is left to astropy, which reports it."""
    path = tmp_path / "cut.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(path)
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(FormatterError, match=r"cut\.fits"):
        read_primary_header(path)
