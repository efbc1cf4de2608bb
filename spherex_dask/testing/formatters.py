# SPDX-License-Identifier: BSD-3-Clause
"""Contract tests every formatter must pass; subclass :class:`FormatterTests` once per formatter.

Example (in a test module)::

    class TestJsonFormatter(FormatterTests):
        @pytest.fixture
        def formatter(self):
            return JsonFormatter()

        @pytest.fixture
        def sample(self):
            return {"a": 1}

Override :meth:`assert_same` to compare objects of your storage class, :meth:`load` to
force lazy objects into memory, and :meth:`corrupt` if truncating is not corruption for
your format.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from ..errors import FileMissingError, FormatterError
from ..io.formatters import Formatter, SupportsComponents, SupportsReadParameters

__all__ = ["FormatterTests"]


class FormatterTests:
    """Write/read round trip, format detection, and errors for missing and corrupt files."""

    @pytest.fixture
    def formatter(self) -> Formatter:
        """The formatter under test (override)."""
        raise NotImplementedError("Define a 'formatter' fixture in the subclass.")

    @pytest.fixture
    def sample(self) -> Any:
        """An object of the formatter's storage class (override)."""
        raise NotImplementedError("Define a 'sample' fixture in the subclass.")

    # -- hooks ------------------------------------------------------------------------
    def assert_same(self, expected: Any, actual: Any) -> None:
        """Assert a read-back object equals the one written (override for your type)."""
        assert actual == expected

    def load(self, obj: Any) -> Any:
        """Force a lazily read object into memory (override for lazy types)."""
        return obj

    def corrupt(self, path: str) -> None:
        """Damage a written file (or every file of a written directory): truncate to half."""
        files = (
            [path]
            if os.path.isfile(path)
            else [str(p) for p in Path(path).rglob("*") if p.is_file()]
        )
        for file in files:
            with open(file, "r+b") as f:
                f.truncate(os.path.getsize(file) // 2)

    def path_for(self, formatter: Formatter, tmp_path: Path, stem: str = "sample") -> str:
        """Where to write, with the formatter's first extension."""
        return str(tmp_path / f"{stem}{formatter.extensions[0]}")

    # -- the contract -------------------------------------------------------------------
    def test_class_attributes(self, formatter: Formatter) -> None:
        """Name, extensions and storage classes are declared."""
        assert formatter.name
        assert formatter.name == formatter.name.lower()
        assert formatter.extensions
        assert all(e.startswith(".") for e in formatter.extensions)
        assert formatter.storage_classes

    def test_round_trip(self, formatter: Formatter, sample: Any, tmp_path: Path) -> None:
        """What is written reads back equal."""
        path = self.path_for(formatter, tmp_path)
        formatter.write(sample, path)
        self.assert_same(sample, self.load(formatter.read(path)))

    def test_can_read_own_file(self, formatter: Formatter, sample: Any, tmp_path: Path) -> None:
        """``can_read`` recognises a file the formatter wrote."""
        path = self.path_for(formatter, tmp_path)
        formatter.write(sample, path)
        assert formatter.can_read(path)

    def test_can_read_rejects_other_content(self, formatter: Formatter, tmp_path: Path) -> None:
        """``can_read`` is False for a foreign file with the right extension, and for no file."""
        path = self.path_for(formatter, tmp_path, "foreign")
        if formatter.is_directory:
            os.makedirs(path)
            Path(path, "readme.txt").write_text("not this format")
        else:
            Path(path).write_bytes(b"\x00\x01 definitely not this format \xff")
        assert not formatter.can_read(path)
        assert not formatter.can_read(self.path_for(formatter, tmp_path, "absent"))

    def test_missing_file(self, formatter: Formatter, tmp_path: Path) -> None:
        """Reading a missing file raises FileMissingError naming it."""
        path = self.path_for(formatter, tmp_path, "absent")
        with pytest.raises(FileMissingError, match="absent"):
            formatter.read(path)

    def test_corrupt_file(self, formatter: Formatter, sample: Any, tmp_path: Path) -> None:
        """Reading a damaged file raises FormatterError naming it."""
        path = self.path_for(formatter, tmp_path, "damaged")
        formatter.write(sample, path)
        self.corrupt(path)
        with pytest.raises(FormatterError, match="damaged"):
            self.load(formatter.read(path))

    def test_unknown_parameter(self, formatter: Formatter, sample: Any, tmp_path: Path) -> None:
        """An unsupported read parameter raises FormatterError listing the supported ones."""
        path = self.path_for(formatter, tmp_path)
        formatter.write(sample, path)
        with pytest.raises(FormatterError, match="no_such_parameter"):
            formatter.read(path, parameters={"no_such_parameter": 1})

    def test_unknown_component(self, formatter: Formatter, sample: Any, tmp_path: Path) -> None:
        """An unknown component raises FormatterError (formatters with components)."""
        if not isinstance(formatter, SupportsComponents):
            pytest.skip("formatter has no components")
        path = self.path_for(formatter, tmp_path)
        formatter.write(sample, path)
        assert formatter.list_components(path)
        with pytest.raises(FormatterError, match="no_such_component"):
            self.load(formatter.read(path, component="no_such_component"))

    def test_write_wrong_type(self, formatter: Formatter, tmp_path: Path) -> None:
        """Writing an object of another type raises FormatterError."""
        with pytest.raises(FormatterError):
            formatter.write(object(), self.path_for(formatter, tmp_path, "wrong"))

    def test_pickles(self, formatter: Formatter) -> None:
        """Formatters travel to Dask workers."""
        assert pickle.loads(pickle.dumps(formatter)) == formatter

    def test_parameters_declared(self, formatter: Formatter) -> None:
        """Declared read parameters are a frozenset of names."""
        if isinstance(formatter, SupportsReadParameters):
            assert all(isinstance(p, str) for p in formatter.supported_parameters())
