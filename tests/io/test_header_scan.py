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


@settings(max_examples=25, deadline=None)
@given(cards=st.dictionaries(_keys, _values, max_size=12), picks=st.sets(st.integers(0, 11)))
def test_keys_select_the_same_values(
    tmp_path_factory: pytest.TempPathFactory, cards: dict, picks: set[int]
) -> None:
    """Reading only some keywords gives exactly those of the full read."""
    path = tmp_path_factory.mktemp("h") / "f.fits"
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    fits.PrimaryHDU(header=header).writeto(path)
    names = list(cards)
    keys = {names[i] for i in picks if i < len(names)} | {"NAXIS", "ABSENT"}
    full = read_primary_header(path)
    assert read_primary_header(path, keys) == {k: v for k, v in full.items() if k in keys}


def test_keys_with_a_card_astropy_must_parse(tmp_path: Path) -> None:
    """A long-string (CONTINUE) card elsewhere does not stop the fast keyword read; when a
    wanted card needs astropy, astropy's reading of it is returned."""
    path = tmp_path / "long.fits"
    header = fits.Header()
    header["EXPIDN"] = 7
    header["NOTE"] = "x" * 100  # written as a long string with CONTINUE cards
    fits.PrimaryHDU(header=header).writeto(path)
    assert read_primary_header(path, {"EXPIDN"}) == {"EXPIDN": 7}
    assert read_primary_header(path, {"NOTE", "EXPIDN"}) == {"NOTE": "x" * 100, "EXPIDN": 7}


def test_ingest_reads_every_keyword_the_exposure_records_use(tmp_path: Path) -> None:
    """The keywords ingest_simulated reads are all the exposure records need: the records made
    from them equal those made from the whole header (an optional keyword left out of the
    list would otherwise fall back to its default without a word)."""
    from spherex_dask import ingest, sim

    simulation = sim.simulate(tmp_path, exposures=1, detectors=(1,), size=16, seed=3)
    raw = next(f.path for f in simulation.files if f.kind == "raw")
    full = read_primary_header(raw)
    some = read_primary_header(raw, ingest._EXPOSURE_KEYWORDS)
    assert ingest.exposure_records_from_header(some) == ingest.exposure_records_from_header(full)
    read: set[str] = set()

    class Spy(dict):
        def __contains__(self, key: object) -> bool:
            read.add(str(key))
            return super().__contains__(key)

        def get(self, key: str, default: object = None) -> object:
            read.add(key)
            return super().get(key, default)

        def __getitem__(self, key: str) -> object:
            read.add(key)
            return super().__getitem__(key)

    ingest.exposure_records_from_header(Spy(full))
    assert read <= ingest._EXPOSURE_KEYWORDS
