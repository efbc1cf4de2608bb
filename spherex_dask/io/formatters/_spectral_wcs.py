# SPDX-License-Identifier: BSD-3-Clause
"""The spectral WCS ``W``: wavelength and bandwidth per pixel from the WCS-WAVE lookup table.

IRSA Level-2 files describe wavelength and bandwidth with an alternate WCS ``W`` made of two
``WAVE-TAB`` axes (FITS WCS Paper III) that look up a one-row binary table ``WCS-WAVE``
(columns ``X``, ``Y``: control-point positions; ``VALUES``: (wavelength, bandwidth) at each
control point). Between control points the lookup is bilinear.

When the ``W`` transform is the usual diagonal one (as in IRSA and simulator files), the
table is turned into a :class:`ControlGrid` in detector pixel coordinates and evaluated
with numpy (about 10x faster than wcslib, equal to it to rounding); any other ``W``
header is evaluated through ``astropy.wcs.WCS(header, fobj=hdul, key="W")``. astropy is
imported only by that path and by the writer (``astropy.wcs`` alone takes 0.1-0.3 s).
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._headers import is_spectral_wcs_key

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.wcs import WCS

    from ._fits_scan import BinaryTable, FitsHeader

__all__ = [
    "wave_tab_cards",
    "AstropySpectralWcs",
    "ControlGrid",
    "spectral_model_from_fits",
]

logger = logging.getLogger(__name__)

WCS_WAVE_EXTNAME = "WCS-WAVE"
_ATTR_X, _ATTR_Y, _ATTR_VALUES = "wcs_wave_x", "wcs_wave_y", "wcs_wave_values"
_ROWS_PER_STEP = 64


def _interp_weights(grid: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell index and fractional weight of ``points`` on ``grid``; linear extrapolation outside."""
    if grid.size == 1:
        return np.zeros(points.shape, dtype=np.intp), np.zeros(points.shape)
    index = np.clip(np.searchsorted(grid, points, side="right") - 1, 0, grid.size - 2)
    weight = (points - grid[index]) / (grid[index + 1] - grid[index])
    return index, weight


@dataclass(frozen=True, eq=False)
class ControlGrid:
    """Wavelength and bandwidth on a rectilinear grid of detector-pixel control points.

    Attributes
    ----------
    x, y
        Control-point positions in detector pixels (0-based), increasing.
    wavelength, bandwidth
        Values at the control points, shape ``(y.size, x.size)``.
    unit
        Unit of both (``"um"``).
    """

    x: np.ndarray
    y: np.ndarray
    wavelength: np.ndarray
    bandwidth: np.ndarray
    unit: str = "um"

    def evaluate(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """(wavelength, bandwidth) at detector pixels ``ys`` x ``xs``: shape (2, ny, nx) float32.

        Bilinear on a rectilinear grid is separable: interpolate the few control rows along
        x first, then pick and blend whole rows along y.
        """
        return np.stack([self.evaluate_plane(ys, xs, plane) for plane in (0, 1)])

    def evaluate_plane(self, ys: np.ndarray, xs: np.ndarray, plane: int) -> np.ndarray:
        """Wavelength (``plane=0``) or bandwidth (1) at ``ys`` x ``xs``: (ny, nx) float32."""
        iy, wy = _interp_weights(self.y, np.asarray(ys, dtype=np.float64))
        ix, wx = _interp_weights(self.x, np.asarray(xs, dtype=np.float64))
        jy = np.minimum(iy + 1, self.y.size - 1)
        jx = np.minimum(ix + 1, self.x.size - 1)
        table = (self.wavelength, self.bandwidth)[plane]
        rows = table[:, ix] * (1 - wx) + table[:, jx] * wx  # (control rows, nx)
        out = np.empty((iy.size, ix.size), dtype=np.float32)
        for start in range(0, iy.size, _ROWS_PER_STEP):  # float64 temporaries stay small
            band = slice(start, start + _ROWS_PER_STEP)
            out[band] = rows[iy[band]] * (1 - wy[band, None]) + rows[jy[band]] * wy[band, None]
        return out

    def coordinate_attrs(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Attrs of the ``wavelength`` and ``bandwidth`` coordinates (they carry the grid)."""
        common = {"units": self.unit, _ATTR_X: self.x.tolist(), _ATTR_Y: self.y.tolist()}
        return (
            {"long_name": "central wavelength", **common, _ATTR_VALUES: self.wavelength.tolist()},
            {"long_name": "bandwidth", **common, _ATTR_VALUES: self.bandwidth.tolist()},
        )

    @classmethod
    def from_coordinate_attrs(
        cls, wavelength_attrs: dict[str, Any], bandwidth_attrs: dict[str, Any]
    ) -> ControlGrid | None:
        """Rebuild a grid from coordinate attrs; ``None`` if they do not hold a consistent one."""
        try:
            x = np.asarray(wavelength_attrs[_ATTR_X], dtype=np.float64)
            y = np.asarray(wavelength_attrs[_ATTR_Y], dtype=np.float64)
            wl = np.asarray(wavelength_attrs[_ATTR_VALUES], dtype=np.float64)
            bw = np.asarray(bandwidth_attrs[_ATTR_VALUES], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            return None
        if wl.shape != (y.size, x.size) or bw.shape != wl.shape:
            return None
        return cls(x, y, wl, bw, str(wavelength_attrs.get("units", "um")))

    @classmethod
    def sample(cls, wavelength: Any, bandwidth: Any, xs: np.ndarray, ys: np.ndarray) -> ControlGrid:
        """A grid sampled from (lazy) coordinate arrays at about 17 points per axis."""
        iy = np.unique(np.linspace(0, ys.size - 1, min(ys.size, 17)).round().astype(int))
        ix = np.unique(np.linspace(0, xs.size - 1, min(xs.size, 17)).round().astype(int))
        wl = np.asarray(wavelength.isel({wavelength.dims[0]: iy, wavelength.dims[1]: ix}).values)
        bw = np.asarray(bandwidth.isel({bandwidth.dims[0]: iy, bandwidth.dims[1]: ix}).values)
        unit = str(wavelength.attrs.get("units", "um"))
        return cls(
            xs[ix].astype(np.float64),
            ys[iy].astype(np.float64),
            wl.astype(np.float64),
            bw.astype(np.float64),
            unit,
        )

    def to_fits(self, x0: int, y0: int) -> tuple[list[tuple[str, Any, str]], fits.BinTableHDU]:
        """Header cards of WCS ``W`` and the ``WCS-WAVE`` table for an array whose first pixel is (x0, y0)."""
        from astropy.io import fits

        cards = wave_tab_cards(self.unit)
        values = np.stack([self.wavelength, self.bandwidth], axis=-1)
        nx, ny = self.x.size, self.y.size
        columns = [
            fits.Column(name="X", format=f"{nx}D", array=(self.x - x0)[None]),
            fits.Column(name="Y", format=f"{ny}D", array=(self.y - y0)[None]),
            fits.Column(
                name="VALUES",
                format=f"{values.size}D",
                unit=self.unit,
                dim=f"(2,{nx},{ny})",
                array=values[None],
            ),
        ]
        return cards, fits.BinTableHDU.from_columns(columns, name=WCS_WAVE_EXTNAME)


class AstropySpectralWcs:
    """A picklable WAVE-TAB evaluator through astropy, for ``W`` headers the grid cannot express.

    Parameters
    ----------
    header_text
        The ``W`` cards (80-character card images).
    table_fits
        A FITS file holding the lookup table (an empty primary HDU, then the table).
    x0, y0
        Detector position of the file's first pixel.
    unit
        Unit of wavelength and bandwidth.
    """

    def __init__(self, header_text: str, table_fits: bytes, *, x0: int, y0: int, unit: str) -> None:
        self.header_text = header_text
        self.table_bytes = table_fits
        self.x0, self.y0 = x0, y0
        self.unit = unit
        self._wcs: WCS | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_wcs"} | {"_wcs": None}

    def wcs(self) -> WCS:
        """The astropy WCS, built on first use (astropy's -TAB WCS does not pickle)."""
        if self._wcs is None:
            from astropy.io import fits
            from astropy.wcs import WCS, FITSFixedWarning

            header = fits.Header.fromstring(self.header_text)
            with fits.open(io.BytesIO(self.table_bytes)) as hdul, warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(header, fobj=hdul, key="W")
            wcs.sip = None
            self._wcs = wcs
        return self._wcs

    def _world(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(wavelength, bandwidth) at detector pixels ``ys`` x ``xs``, as astropy gives them."""
        px, py = np.meshgrid(np.asarray(xs) - self.x0, np.asarray(ys) - self.y0)
        wl, bw = self.wcs().pixel_to_world_values(px, py)
        return wl, bw

    def evaluate(self, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        """(wavelength, bandwidth) at detector pixels ``ys`` x ``xs``: shape (2, ny, nx) float32."""
        return np.stack(self._world(ys, xs)).astype(np.float32)

    def evaluate_plane(self, ys: np.ndarray, xs: np.ndarray, plane: int) -> np.ndarray:
        """Wavelength (``plane=0``) or bandwidth (1) at ``ys`` x ``xs``: (ny, nx) float32.

        A new array of its own, not a view of both planes: a one-chunk coordinate's
        ``.values`` returns it as it is (:class:`._lazy_arrays.DirectCompute`).
        """
        return self._world(ys, xs)[plane].astype(np.float32, order="C")


def _grid_from_table(
    header: Mapping[str, Any], table: BinaryTable, x0: int, y0: int
) -> ControlGrid | None:
    """The control grid when ``W`` is the plain diagonal two-axis lookup, else ``None``."""
    try:
        for axis, other in ((1, 2), (2, 1)):
            if (
                not str(header[f"CTYPE{axis}W"]).endswith("-TAB")
                or header.get(f"PV{axis}_3W", axis) != axis
            ):
                return None
            if header.get(f"PC{axis}_{other}W", 0) or header.get(f"CD{axis}_{other}W", 0):
                return None
        if header["PS1_1W"] != header["PS2_1W"] or header["PS1_0W"] != header["PS2_0W"]:
            return None
        values = np.asarray(table.column(str(header["PS1_1W"]))[0], dtype=np.float64)
        xi = np.asarray(table.column(str(header["PS1_2W"]))[0], dtype=np.float64).ravel()
        yi = np.asarray(table.column(str(header["PS2_2W"]))[0], dtype=np.float64).ravel()
    except (KeyError, IndexError, ValueError):
        return None
    if values.shape != (yi.size, xi.size, 2):
        return None
    positions = []
    for axis, index, origin in ((1, xi, x0), (2, yi, y0)):
        delta = float(header.get(f"CD{axis}_{axis}W", header.get(f"CDELT{axis}W", 1.0)))
        delta *= float(header.get(f"PC{axis}_{axis}W", 1.0))
        pixel = (index - float(header.get(f"CRVAL{axis}W", 0.0))) / delta
        positions.append(pixel + float(header.get(f"CRPIX{axis}W", 0.0)) - 1 + origin)
    if np.any(np.diff(positions[0]) <= 0) or np.any(np.diff(positions[1]) <= 0):
        return None
    unit = str(header.get("CUNIT1W", "um"))
    return ControlGrid(positions[0], positions[1], values[..., 0], values[..., 1], unit)


def _astropy_model(
    header_text: str, table: BinaryTable, *, x0: int, y0: int, unit: str
) -> AstropySpectralWcs:
    from astropy.io import fits

    cards = (header_text[i : i + 80] for i in range(0, len(header_text), 80))
    w_cards = "".join(card for card in cards if is_spectral_wcs_key(card[:8].rstrip()))
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), table.to_hdu()]).writeto(buffer)
    return AstropySpectralWcs(w_cards, buffer.getvalue(), x0=x0, y0=y0, unit=unit)


def spectral_model_from_fits(
    header: FitsHeader, table: BinaryTable | None, *, x0: int, y0: int, path: str
) -> ControlGrid | AstropySpectralWcs | None:
    """The evaluator of WCS ``W`` in ``header`` (``None`` if the file has none).

    ``x0``/``y0`` is the detector position of the file's first pixel.
    """
    if table is None or "CTYPE1W" not in header or "CTYPE2W" not in header:
        return None
    grid = _grid_from_table(header, table, x0, y0)
    if grid is not None:
        return grid
    try:
        unit = str(header.get("CUNIT1W", "um"))
        model = _astropy_model(header.text, table, x0=x0, y0=y0, unit=unit)
        model.wcs()
    except Exception as err:  # astropy raises many types for a bad WCS
        logger.warning(
            "Spectral WCS W in %s cannot be evaluated (%s); no wavelength coordinates", path, err
        )
        return None
    return model


def wave_tab_cards(unit: str = "um") -> list[tuple[str, Any, str]]:
    """Header cards of the two-axis ``WAVE-TAB`` WCS ``W`` (wavelength, bandwidth) pointing at
    the ``WCS-WAVE`` table (FITS WCS Paper III); the simulator writes the same cards."""
    cards: list[tuple[str, Any, str]] = [
        ("WCSAXESW", 2, "number of axes of WCS W"),
        ("WCSNAMEW", "WAVELENGTH", "central wavelength and bandwidth per pixel"),
    ]
    for axis, name, index in ((1, "Wavelength", "X"), (2, "Bandwidth", "Y")):
        cards += [
            (f"CTYPE{axis}W", "WAVE-TAB", "table lookup (FITS WCS Paper III)"),
            (f"CNAME{axis}W", name, ""),
            (f"CUNIT{axis}W", unit, ""),
            (f"CRPIX{axis}W", 1.0, ""),
            (f"CRVAL{axis}W", 0.0, "zero-based pixel index into the table"),
            (f"CDELT{axis}W", 1.0, ""),
            (f"PS{axis}_0W", WCS_WAVE_EXTNAME, "EXTNAME of the lookup table"),
            (f"PS{axis}_1W", "VALUES", "column of the coordinate array"),
            (f"PS{axis}_2W", index, "column of the index vector"),
            (f"PV{axis}_3W", axis, "axis number in the coordinate array"),
        ]
    return cards
