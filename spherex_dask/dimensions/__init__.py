# SPDX-License-Identifier: BSD-3-Clause
"""Dimension universes: the axes that label data (instrument, detector, exposure, ...)."""

from ._universe import DimensionElement, DimensionField, DimensionUniverse

__all__ = ["DimensionElement", "DimensionField", "DimensionUniverse"]
