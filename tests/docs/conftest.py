# SPDX-License-Identifier: BSD-3-Clause
"""List the documentation examples that were not run (``<!-- skip-test: ... -->``) and why."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print one line per skipped example block, after the test results."""
    lines = sorted(
        {
            value
            for key in ("passed", "failed")
            for report in terminalreporter.stats.get(key, [])
            for name, value in getattr(report, "user_properties", [])
            if name == "skipped_block"
        }
    )
    if lines:
        terminalreporter.write_sep("-", f"{len(lines)} documentation example(s) not run")
        for line in lines:
            terminalreporter.write_line(line)
