# SPDX-License-Identifier: BSD-3-Clause
"""Dataset ids made in bulk.

These are the per-row hot paths of bulk inserts and imports: they produce exactly what
:func:`uuid.uuid4` and :meth:`DatasetRef.deterministic_id` produce, with the per-call work
hoisted out of the loop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from typing import Any

from .._gc import paused_gc
from ..types import DATASET_ID_NAMESPACE

__all__ = ["deterministic_ids", "paused_gc", "random_uuids"]

logger = logging.getLogger(__name__)

#: Masks giving a random 128-bit integer the version (4) and variant (RFC 4122) bits.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def random_uuids(count: int) -> list[uuid.UUID]:
    """``count`` random (version 4) UUIDs, from one ``os.urandom`` call.

    Examples
    --------
    >>> ids = random_uuids(3)
    >>> len(set(ids)), {i.version for i in ids}, {i.variant for i in ids} == {uuid.RFC_4122}
    (3, {4}, True)
    """
    data = os.urandom(16 * count)
    from_bytes = int.from_bytes
    make = uuid.UUID
    return [
        make(int=(from_bytes(data[i : i + 16], "big") & _UUID4_CLEAR) | _UUID4_SET)
        for i in range(0, 16 * count, 16)
    ]


def deterministic_ids(
    type_name: str, dimensions: Sequence[str], keys: Sequence[tuple[Any, ...]], run: str
) -> list[uuid.UUID]:
    """The UUID5s :meth:`DatasetRef.deterministic_id` gives each data ID (values of
    ``dimensions`` in ``keys``), with the namespace and constant parts hashed once.

    Examples
    --------
    >>> from spherex_dask.types import DatasetRef
    >>> dims = ("instrument", "detector", "exposure")
    >>> keys = [("SPHEREx", 3, 17), ("SPHEREx", 4, 'a"b')]
    >>> deterministic_ids("raw", dims, keys, "run/1") == [
    ...     DatasetRef.deterministic_id("raw", dict(zip(dims, k)), "run/1") for k in keys
    ... ]
    True
    """
    order = sorted(range(len(dimensions)), key=lambda i: dimensions[i])
    template = ",".join(f"{dimensions[i]}={{{i}!r}}" for i in order)
    prefix = hashlib.sha1(DATASET_ID_NAMESPACE.bytes + f"{type_name}|".encode())
    suffix = f"|{run}"
    make = uuid.UUID
    out = []
    for key in keys:
        digest = prefix.copy()
        digest.update((template.format(*key) + suffix).encode())
        out.append(make(bytes=digest.digest()[:16], version=5))
    return out
