# SPDX-License-Identifier: BSD-3-Clause
"""Dimension records fetched once per element while a quantum graph is built.

They give implied dimension values (an exposure's planning period) and the timespans used to
look up calibrations, without one registry query per quantum.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..registry import Registry
    from ..types import DimensionRecord, Timespan

__all__ = ["RecordCache"]

logger = logging.getLogger(__name__)


class RecordCache:
    """Records of the dimension elements a build needs, each element fetched in one query.

    Parameters
    ----------
    registry
        The registry to read records from.
    data_id
        A constraint applied to each element's query (only the keys the element has).
    """

    def __init__(self, registry: Registry, data_id: Mapping[str, Any]) -> None:
        self.registry = registry
        self.universe = registry.universe
        self.data_id = dict(data_id)
        self._records: dict[str, dict[tuple[Any, ...], DimensionRecord]] = {}
        self._required_cache: dict[str, tuple[str, ...]] = {}
        self._temporal_cache: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _required(self, element: str) -> tuple[str, ...]:
        required = self._required_cache.get(element)
        if required is None:
            required = self._required_cache[element] = self.universe.sorted(
                self.universe[element].requires
            )
        return required

    def _temporal(self, dimensions: tuple[str, ...]) -> tuple[str, ...]:
        """The temporal elements among ``dimensions``, most specific first."""
        temporal = self._temporal_cache.get(dimensions)
        if temporal is None:
            ordered = reversed(self.universe.sorted(dimensions))
            temporal = tuple(e for e in ordered if self.universe[e].temporal)
            self._temporal_cache[dimensions] = temporal
        return temporal

    def _load(self, element: str) -> dict[tuple[Any, ...], DimensionRecord]:
        records = self._records.get(element)
        if records is None:
            required = self._required(element)
            usable = {*required, element, *self.universe[element].implies}
            constraint = {k: v for k, v in self.data_id.items() if k in usable}
            key_name = self.universe[element].key.name
            records = {
                (*(r.values[d] for d in required), r.values[key_name]): r
                for r in self.registry.query_dimension_records(element, data_id=constraint or None)
            }
            logger.debug("Fetched %d %s records.", len(records), element)
            self._records[element] = records
        return records

    def record(self, element: str, data_id: Mapping[str, Any]) -> DimensionRecord | None:
        """The record of ``element`` for the values in ``data_id`` (``None`` if there is none)."""
        key = (*(data_id[d] for d in self._required(element)), data_id[element])
        return self._load(element).get(key)

    def complete(self, row: dict[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
        """Add to ``row`` (in place) the ``wanted`` dimensions that its elements imply."""
        for name in wanted:
            if name in row:
                continue
            for element in list(row):
                if name in self.universe[element].implies:
                    record = self.record(element, row)
                    if record is not None and record.values.get(name) is not None:
                        row[name] = record.values[name]
                        break
        return row

    def timespan(self, data_id: Mapping[str, Any]) -> Timespan | None:
        """The timespan of the most specific temporal dimension in ``data_id`` (e.g. exposure)."""
        for element in self._temporal(tuple(data_id)):
            record = self.record(element, data_id)
            if record is not None and record.timespan is not None:
                return record.timespan
        return None
