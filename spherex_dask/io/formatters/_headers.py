# SPDX-License-Identifier: BSD-3-Clause
"""FITS headers <-> xarray attrs, and pixel-origin bookkeeping for cut-outs.

Headers become plain ``dict[str, scalar]``: structural keywords (``BITPIX``, ``NAXISn``...)
are dropped because the array carries them, repeated ``COMMENT``/``HISTORY`` cards are
joined with newlines, and card comments are not kept. The celestial WCS cards stay, so a
write -> read round trip keeps the WCS. A cut-out records its offset in the IRAF ``LTV1`` /
``LTV2`` keywords (physical = logical - LTV) and shifts every ``CRPIXn`` so each WCS still
describes the cut-out's own pixel grid.
"""

from __future__ import annotations

import datetime
import functools
import logging
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from astropy.io import fits

__all__ = [
    "attrs_to_header",
    "cards_to_attrs",
    "header_to_attrs",
    "is_spectral_wcs_key",
    "pixel_origin",
    "set_pixel_origin",
    "to_jsonable",
]

logger = logging.getLogger(__name__)

_STRUCTURAL = frozenset(
    {
        "SIMPLE",
        "XTENSION",
        "BITPIX",
        "NAXIS",
        "EXTEND",
        "PCOUNT",
        "GCOUNT",
        "BSCALE",
        "BZERO",
        "BLANK",
        "CHECKSUM",
        "DATASUM",
        "EXTNAME",
        "EXTVER",
        "EXTLEVEL",
        "END",
        "TFIELDS",
        "THEAP",
        "ZIMAGE",
        "ZSIMPLE",
        "ZBITPIX",
        "ZNAXIS",
        "ZTENSION",
    }
)
_STRUCTURAL_RE = re.compile(
    r"^(NAXIS\d+|ZNAXIS\d+|ZTILE\d+|ZNAME\d+|ZVAL\d+|T(TYPE|FORM|DIM|UNIT|NULL|SCAL|ZERO|DISP)\d+)$"
)
_MULTI = ("COMMENT", "HISTORY")
_SPECTRAL_WCS_RE = re.compile(
    r"^(WCSAXES|WCSNAME|CTYPE\d|CUNIT\d|CRPIX\d|CRVAL\d|CDELT\d|CNAME\d|CROTA\d|CRDER\d|CSYER\d"
    r"|PC\d_\d|CD\d_\d|PS\d_\d|PV\d_\d)W$"
)
_CRPIX_RE = re.compile(r"^CRPIX([12])[A-Z]?$")
_KEYWORD_RE = re.compile(r"^[A-Z0-9_-]{1,8}$")


@functools.lru_cache(maxsize=4096)
def is_spectral_wcs_key(key: str) -> bool:
    """Whether ``key`` belongs to the alternate WCS ``W`` (the WAVE-TAB lookup)."""
    return bool(_SPECTRAL_WCS_RE.match(key))


def header_to_attrs(header: fits.Header) -> dict[str, Any]:
    """Plain attrs of a header, without structural keywords.

    Examples
    --------
    >>> from astropy.io import fits
    >>> h = fits.Header([("BITPIX", -32), ("BUNIT", "MJy/sr"), ("HISTORY", "a"), ("HISTORY", "b")])
    >>> header_to_attrs(h)
    {'BUNIT': 'MJy/sr', 'HISTORY': 'a\\nb'}
    """
    from astropy.io.fits.card import Undefined

    return cards_to_attrs(
        (card.keyword, None if isinstance(card.value, Undefined) else card.value)
        for card in header.cards
    )


@functools.lru_cache(maxsize=4096)
def _keep(key: str) -> bool:
    return bool(key) and key not in _STRUCTURAL and not _STRUCTURAL_RE.match(key)


def cards_to_attrs(cards: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Plain attrs of (keyword, value) cards: :func:`header_to_attrs` without astropy.

    Undefined values must already be ``None``.

    Examples
    --------
    >>> cards_to_attrs([("NAXIS", 2), ("COMMENT", "a"), ("COMMENT", "b"), ("Z", 1j)])
    {'COMMENT': 'a\\nb', 'Z': '1j'}
    """
    attrs: dict[str, Any] = {}
    for key, value in cards:
        if not _keep(key):
            continue
        if key in _MULTI:
            text = str(value)
            attrs[key] = f"{attrs[key]}\n{text}" if key in attrs else text
            continue
        attrs[key] = str(value) if isinstance(value, complex) else value
    return attrs


def attrs_to_header(attrs: Mapping[str, Any], *, drop_spectral_wcs: bool = False) -> fits.Header:
    """A header from attrs; non-scalar or unrepresentable values are skipped with a log line.

    Keys longer than 8 characters (or not FITS-legal) become ``HIERARCH`` cards.
    """
    from astropy.io import fits

    header = fits.Header()
    for raw_key, value in attrs.items():
        key = str(raw_key).upper()
        if key in _STRUCTURAL or _STRUCTURAL_RE.match(key):
            continue
        if drop_spectral_wcs and is_spectral_wcs_key(key):
            continue
        if key in _MULTI:
            for line in str(value).split("\n"):
                header.append((key, line), end=True)
            continue
        _set_card(header, key, value)
    return header


def _set_card(header: fits.Header, key: str, value: Any) -> None:
    from astropy.io.fits.verify import VerifyWarning

    value = value.item() if isinstance(value, np.generic) else value
    if not (value is None or isinstance(value, bool | int | float | str)):
        logger.debug("Attribute %s=%r is not a FITS scalar; not written", key, value)
        return
    if isinstance(value, float) and not math.isfinite(value):
        logger.debug("Attribute %s=%r is not finite; not written", key, value)
        return
    if isinstance(value, str) and not value.isascii():
        value = value.encode("ascii", "replace").decode()
    name = key if _KEYWORD_RE.match(key) else f"HIERARCH {key}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", VerifyWarning)
            header[name] = value
    except (ValueError, VerifyWarning) as err:
        logger.warning("Header card %s=%r cannot be written to FITS (%s); skipped", key, value, err)


def pixel_origin(attrs: Mapping[str, Any]) -> tuple[int, int]:
    """(x0, y0) of the array's first pixel in detector pixels, from ``LTV1``/``LTV2``."""
    return (int(-float(attrs.get("LTV1", 0) or 0)), int(-float(attrs.get("LTV2", 0) or 0)))


def set_pixel_origin(attrs: Mapping[str, Any], x0: int, y0: int) -> dict[str, Any]:
    """Attrs for the same detector pixels seen from origin ``(x0, y0)``.

    Every ``CRPIX1*``/``CRPIX2*`` moves by the change of origin, so the celestial, pixel
    and spectral WCSs keep describing the same sky; ``LTV1``/``LTV2`` record the new origin.

    Examples
    --------
    >>> set_pixel_origin({"CRPIX1": 10.0, "CRPIX2A": 1.0}, 4, 2)
    {'CRPIX1': 6.0, 'CRPIX2A': -1.0, 'LTV1': -4, 'LTV2': -2}
    """
    old_x0, old_y0 = pixel_origin(attrs)
    dx, dy = x0 - old_x0, y0 - old_y0
    result = dict(attrs)
    if dx == 0 and dy == 0:
        return result
    for key, value in attrs.items():
        match = _CRPIX_RE.match(str(key))
        if match and isinstance(value, int | float) and not isinstance(value, bool):
            result[key] = float(value) - (dx if match.group(1) == "1" else dy)
    result["LTV1"] = -x0
    result["LTV2"] = -y0
    if x0 == 0 and y0 == 0:
        del result["LTV1"], result["LTV2"]
    return result


def to_jsonable(value: Any) -> Any:
    """A JSON-compatible copy of an attribute value (numpy scalars, tuples, dates...).

    Examples
    --------
    >>> to_jsonable({"a": np.float32(1.5), "b": (1, 2), "c": b"x"})
    {'a': 1.5, 'b': [1, 2], 'c': 'x'}
    """
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [
            to_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)
        ]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime.date):
        return value.isoformat()
    logger.debug("Attribute value %r stored as its string form", value)
    return str(value)
