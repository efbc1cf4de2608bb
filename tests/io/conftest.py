# SPDX-License-Identifier: BSD-3-Clause
"""Fixtures for the io tests: small IRSA-layout FITS files written with astropy alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from spherex_dask.types import DataId, DatasetRef, DatasetType, DimensionRecord


def _wave_table(ny: int, nx: int) -> tuple[list[tuple[str, object]], fits.BinTableHDU]:
    gx = np.unique(np.linspace(0, nx - 1, 5).round().astype(np.int32))
    gy = np.unique(np.linspace(0, ny - 1, 6).round().astype(np.int32))
    yy, xx = np.meshgrid(gy, gx, indexing="ij")
    wavelength = 0.75 * (1.09 / 0.75) ** (yy / ny) * (1 + 1e-5 * (xx - nx / 2) ** 2)
    values = np.stack([wavelength, wavelength / 39.0], axis=-1).astype(np.float32)
    columns = [
        fits.Column(name="X", format=f"{gx.size}J", array=gx[None]),
        fits.Column(name="Y", format=f"{gy.size}J", array=gy[None]),
        fits.Column(
            name="VALUES",
            format=f"{values.size}E",
            dim=f"(2,{gx.size},{gy.size})",
            array=values[None],
        ),
    ]
    cards: list[tuple[str, object]] = [("WCSAXESW", 2), ("WCSNAMEW", "WAVELENGTH")]
    for axis, name, index in ((1, "Wavelength", "X"), (2, "Bandwidth", "Y")):
        cards += [
            (f"CTYPE{axis}W", "WAVE-TAB"),
            (f"CNAME{axis}W", name),
            (f"CUNIT{axis}W", "um"),
            (f"CRPIX{axis}W", 1.0),
            (f"CRVAL{axis}W", 0.0),
            (f"CDELT{axis}W", 1.0),
            (f"PS{axis}_0W", "WCS-WAVE"),
            (f"PS{axis}_1W", "VALUES"),
            (f"PS{axis}_2W", index),
            (f"PV{axis}_3W", axis),
        ]
    return cards, fits.BinTableHDU.from_columns(columns, name="WCS-WAVE")


def celestial_cards(ny: int, nx: int) -> list[tuple[str, object]]:
    """A TAN WCS plus the zero-based pixel WCS A."""
    return [
        ("WCSAXES", 2),
        ("CTYPE1", "RA---TAN"),
        ("CTYPE2", "DEC--TAN"),
        ("CUNIT1", "deg"),
        ("CUNIT2", "deg"),
        ("CRPIX1", (nx + 1) / 2),
        ("CRPIX2", (ny + 1) / 2),
        ("CRVAL1", 150.1),
        ("CRVAL2", 2.2),
        ("CD1_1", -0.0017),
        ("CD1_2", 0.0),
        ("CD2_1", 0.0),
        ("CD2_2", 0.0017),
        ("RADESYS", "ICRS"),
        ("CTYPE1A", "X"),
        ("CTYPE2A", "Y"),
        ("CRPIX1A", 1.0),
        ("CRPIX2A", 1.0),
        ("CRVAL1A", 0.0),
        ("CRVAL2A", 0.0),
        ("CDELT1A", 1.0),
        ("CDELT2A", 1.0),
    ]


def write_level2(
    path: Path,
    *,
    shape: tuple[int, int] = (64, 48),
    seed: int = 0,
    planes: tuple[str, ...] = ("IMAGE", "FLAGS", "VARIANCE", "ZODI"),
    psf: bool = True,
    wave: bool = True,
) -> dict[str, np.ndarray]:
    """Write an IRSA Level-2 layout file with astropy; return the arrays written."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    data = {
        "IMAGE": rng.normal(1.0, 0.1, shape).astype(np.float32),
        "FLAGS": rng.integers(0, 1 << 22, shape).astype(np.int32),
        "VARIANCE": rng.uniform(0.01, 0.02, shape).astype(np.float32),
        "ZODI": np.full(shape, 0.3, dtype=np.float32),
    }
    primary = fits.PrimaryHDU()
    primary.header["VERSION"] = ("v20", "pipeline version")
    primary.header["HISTORY"] = "made for a test"
    hdus: list[fits.hdu.base.ExtensionHDU | fits.PrimaryHDU] = [primary]
    wave_cards, table = _wave_table(ny, nx)
    for name in planes:
        header = fits.Header()
        if name == "IMAGE":
            header.extend(
                [
                    ("BUNIT", "MJy/sr"),
                    ("DETECTOR", 3),
                    ("OBSID", "2025W19_2B_0073_2"),
                    ("MJD-OBS", 60800.5),
                ]
            )
            header.extend(celestial_cards(ny, nx))
            if wave:
                header.extend(wave_cards)
        hdus.append(fits.ImageHDU(data[name], header=header, name=name))
    if psf:
        cube = rng.uniform(size=(4, 7, 7)).astype(np.float32)
        hdus.append(fits.ImageHDU(cube, name="PSF"))
        data["PSF"] = cube
    if wave:
        hdus.append(table)
    fits.HDUList(hdus).writeto(path)
    return {k: v for k, v in data.items() if k in planes or k == "PSF"}


@pytest.fixture
def level2(tmp_path: Path) -> Callable[..., tuple[str, dict[str, np.ndarray]]]:
    """Factory: ``level2(name, **options)`` -> (path, arrays)."""

    def make(name: str = "level2.fits", **options: object) -> tuple[str, dict[str, np.ndarray]]:
        path = tmp_path / name
        arrays = write_level2(path, **options)  # type: ignore[arg-type]
        return str(path), arrays

    return make


RAW = DatasetType(
    name="raw", dimensions=("instrument", "exposure", "detector"), storage_class="SpectralImage"
)
DARK = DatasetType(
    name="dark",
    dimensions=("instrument", "detector"),
    storage_class="SpectralImage",
    is_calibration=True,
)
TABLE = DatasetType(
    name="catalog", dimensions=("instrument", "detector"), storage_class="AstropyTable"
)
META = DatasetType(name="meta", dimensions=("instrument",), storage_class="StructuredData")


def raw_ref(
    exposure: int = 1234, detector: int = 3, run: str = "rawexpr", *, obs_id: str | None = None
) -> DatasetRef:
    """A raw ref with exposure records attached (obs_id, planning_period)."""
    obs_id = obs_id or f"2025W19_2B_{exposure:04d}_1"
    records = {
        "exposure": DimensionRecord(
            element="exposure",
            values={
                "instrument": "SPHEREx",
                "id": exposure,
                "obs_id": obs_id,
                "planning_period": "2025W19_2B",
            },
        )
    }
    data_id = DataId(
        {"instrument": "SPHEREx", "exposure": exposure, "detector": detector}, records=records
    )
    return DatasetRef.make(RAW, data_id, run)


@pytest.fixture
def make_raw_ref() -> Callable[..., DatasetRef]:
    """Factory of raw refs with records."""
    return raw_ref


@pytest.fixture
def refs() -> dict[str, DatasetType]:
    """The dataset types used in the tests."""
    return {"raw": RAW, "dark": DARK, "catalog": TABLE, "meta": META}
