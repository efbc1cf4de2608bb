# SPDX-License-Identifier: BSD-3-Clause
"""The simulated files pass HEASARC's fitsverify (Debian package ``fitsverify``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from .conftest import files_of

SUMMARY = re.compile(r"Verification found (\d+) warning\(s\) and (\d+) error\(s\)")


def _fitsverify() -> str:
    path = shutil.which("fitsverify")
    if path is None:
        message = "fitsverify is not installed (apt-get install fitsverify)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.parametrize("kind", ["raw", "dark", "level2"])
def test_fitsverify(kind: str, irsa_sim) -> None:
    program = _fitsverify()
    path = files_of(irsa_sim, kind)[0].path
    result = subprocess.run([program, str(path)], capture_output=True, text=True, check=False)
    summary = SUMMARY.search(result.stdout)
    assert summary is not None, result.stdout + result.stderr
    assert summary.groups() == ("0", "0"), result.stdout
    assert result.returncode == 0
