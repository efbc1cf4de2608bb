# SPDX-License-Identifier: BSD-3-Clause
"""ECSV, Parquet and JSON formatters: the contract suite and their parameters."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table

from spherex_dask.errors import FormatterError
from spherex_dask.io import EcsvFormatter, JsonFormatter, ParquetFormatter
from spherex_dask.testing.formatters import FormatterTests


def _table() -> Table:
    return Table(
        {"id": np.arange(4), "flux": np.linspace(1, 2, 4) * u.mJy, "band": ["a", "b", "c", "d"]},
        meta={"detector": 3, "comment": "made in a test"},
    )


class _TableTests(FormatterTests):
    @pytest.fixture
    def sample(self) -> Table:
        return _table()

    def assert_same(self, expected: Table, actual: Table) -> None:
        assert actual.colnames == expected.colnames
        assert dict(actual.meta) == dict(expected.meta)
        assert actual["flux"].unit == u.mJy
        for name in expected.colnames:
            np.testing.assert_array_equal(actual[name], expected[name])

    def test_columns_and_component(self, formatter, sample, tmp_path) -> None:
        """``columns`` keeps some columns; a component is one column."""
        path = self.path_for(formatter, tmp_path)
        formatter.write(sample, path)
        assert formatter.read(path, parameters={"columns": ["band", "id"]}).colnames == [
            "band",
            "id",
        ]
        np.testing.assert_array_equal(formatter.read(path, component="id"), sample["id"])
        with pytest.raises(FormatterError, match="columns: id, flux, band"):
            formatter.read(path, component="mag")


class TestEcsvFormatter(_TableTests):
    """ECSV contract."""

    @pytest.fixture
    def formatter(self) -> EcsvFormatter:
        return EcsvFormatter()


class TestParquetFormatter(_TableTests):
    """Parquet contract."""

    @pytest.fixture
    def formatter(self) -> ParquetFormatter:
        return ParquetFormatter()


class TestJsonFormatter(FormatterTests):
    """JSON contract."""

    @pytest.fixture
    def formatter(self) -> JsonFormatter:
        return JsonFormatter()

    @pytest.fixture
    def sample(self) -> dict:
        return {"run": "rawexpr", "values": [1, 2.5, None], "nested": {"ok": True}}

    def test_component_and_bad_content(self, formatter, sample, tmp_path) -> None:
        """A component is a top-level key; a JSON list or NaN is refused."""
        path = self.path_for(formatter, tmp_path)
        formatter.write(sample, path)
        assert formatter.read(path, component="nested") == {"ok": True}
        (tmp_path / "list.json").write_text("[1, 2]")
        with pytest.raises(FormatterError, match=r"list.json"):
            formatter.read(str(tmp_path / "list.json"))
        with pytest.raises(FormatterError, match=r"nan.json"):
            formatter.write({"x": float("nan")}, str(tmp_path / "nan.json"))
