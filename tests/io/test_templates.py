# SPDX-License-Identifier: BSD-3-Clause
"""File templates: fields, record lookups, sanitising, uniqueness checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherex_dask.errors import TemplateError
from spherex_dask.io import DEFAULT_TEMPLATE, SPHEREX_TEMPLATES, FileTemplate, FileTemplates
from spherex_dask.types import DataId, DatasetRef, DatasetType

from .conftest import DARK, RAW, raw_ref

RAW_TEMPLATE = "{run}/{dataset_type}/{planning_period}/{exposure.obs_id}/{dataset_type}_{exposure.obs_id}_D{detector}"


def test_record_fields_and_implied_values() -> None:
    """Record fields and implied dimensions (planning_period) come from the attached records."""
    ref = raw_ref(73, 3, obs_id="2025W19_2B_0073_2")
    path = FileTemplate(RAW_TEMPLATE).format(ref)
    assert path == "rawexpr/raw/2025W19_2B/2025W19_2B_0073_2/raw_2025W19_2B_0073_2_D3"
    assert SPHEREX_TEMPLATES["raw"] == RAW_TEMPLATE


def test_default_template_and_format_specs() -> None:
    """The default names every data-ID key; format specs apply."""
    ref = raw_ref(5, 2)
    assert (
        FileTemplate(DEFAULT_TEMPLATE).format(ref)
        == "rawexpr/raw/raw_detector-2_exposure-5_instrument-SPHEREx"
    )
    assert (
        FileTemplate("{run}/{dataset_type}/{exposure:06d}_{detector}").format(ref)
        == "rawexpr/raw/000005_2"
    )


def test_missing_field_lists_available() -> None:
    """A field the dataset lacks is a TemplateError naming it and listing what exists."""
    ref = DatasetRef.make(RAW, DataId({"instrument": "SPHEREx", "exposure": 1, "detector": 1}), "r")
    with pytest.raises(
        TemplateError,
        match=r"needs \{planning_period\}.*available: run, dataset_type, id, data_id, detector, exposure",
    ):
        FileTemplate(RAW_TEMPLATE).format(ref)
    with pytest.raises(TemplateError, match=r"exposure.obs_id"):
        FileTemplate("{run}/{dataset_type}/{exposure.nope}/{detector}_{exposure}").format(raw_ref())


@pytest.mark.parametrize(
    ("run", "obs_id", "expected"),
    [
        ("u/alice/test", "2025W19_2B_0001_1", "u/alice/test/raw/2025W19_2B_0001_1_D3"),
        ("r", "a/../../etc", "r/raw/a_.._.._etc_D3"),
        ("r", "/abs\\path\0x", "r/raw/_abs_path_x_D3"),
        ("r", "a b:c*?", "r/raw/a_b_c___D3"),
    ],
)
def test_values_are_sanitised(run: str, obs_id: str, expected: str) -> None:
    """Separators, NUL and odd characters in values become '_'; only runs may hold '/'."""
    ref = raw_ref(1, 3, run, obs_id=obs_id)
    assert (
        FileTemplate("{run}/{dataset_type}/{exposure.obs_id}_D{detector}").format(ref) == expected
    )


@pytest.mark.parametrize("run", ["../escape", "/root", "a//b", ".hidden", "a/./b"])
def test_paths_cannot_escape_root(run: str) -> None:
    """Runs (which may contain '/') cannot make '..', absolute, empty or hidden segments."""
    with pytest.raises(TemplateError, match="inside the datastore root"):
        FileTemplate("{run}/{dataset_type}/{exposure}_{detector}").format(raw_ref(1, 3, run))


@settings(max_examples=200, deadline=None)
@given(run=st.text(min_size=1, max_size=12), obs_id=st.text(min_size=1, max_size=12))
def test_rendered_paths_stay_inside_root(run: str, obs_id: str) -> None:
    """Whatever the values, a rendered path is relative and never climbs out."""
    ref = raw_ref(1, 3, run, obs_id=obs_id)
    try:
        path = FileTemplate(
            "{run}/{dataset_type}/{exposure.obs_id}/{dataset_type}_{exposure}_D{detector}"
        ).format(ref)
    except TemplateError:
        return
    parts = path.split("/")
    assert not path.startswith("/")
    assert ".." not in parts
    assert "" not in parts
    assert all(not p.startswith(".") for p in parts)
    assert "\0" not in path
    assert "\\" not in path


def test_bad_templates_rejected() -> None:
    """Malformed templates fail at construction."""
    for text in ("{run}/{", "{run!r}/x", "{0}/x", "/abs/{run}", "{run}/../x", "{a.b.c}"):
        with pytest.raises(TemplateError):
            FileTemplate(text)


def test_uniqueness_validation() -> None:
    """Templates must name the run, the dataset type and each dimension (or its alternate key)."""
    FileTemplate(RAW_TEMPLATE).validate(RAW)
    FileTemplate("{run}/{dataset_type}/{id}").validate(RAW)
    FileTemplate("{run}/{dataset_type}/{data_id}").validate(RAW)
    with pytest.raises(TemplateError, match=r"lacks \{exposure or exposure.obs_id\}"):
        FileTemplate("{run}/{dataset_type}/{detector}").validate(RAW)
    with pytest.raises(TemplateError, match=r"lacks \{run\}"):
        FileTemplate("{dataset_type}/{exposure}_{detector}").validate(RAW)
    with pytest.raises(TemplateError, match=r"\{instrument\}"):
        FileTemplate("{run}/{dataset_type}/{detector}").validate(DARK, optional_dimensions=())


def test_per_dataset_type_templates() -> None:
    """A dataset type's own template needs no {dataset_type}; others use the default."""
    templates = FileTemplates(
        {"dark": "{run}/darks/D{detector}", "default": "{run}/{dataset_type}/{id}"}
    )
    dark = DatasetRef.make(DARK, DataId({"instrument": "SPHEREx", "detector": 4}), "darkr")
    assert templates.format(dark) == "darkr/darks/D4"
    assert templates.format(raw_ref()).startswith("rawexpr/raw/")
    bad = FileTemplates({"raw": "{run}/{detector}"})
    with pytest.raises(TemplateError, match="exposure"):
        bad.format(raw_ref())
    other = DatasetType(
        name="other", dimensions=("instrument", "detector"), storage_class="SpectralImage"
    )
    assert templates.get("raw.flags") is templates.default
    assert templates.get(other.name) is templates.default
