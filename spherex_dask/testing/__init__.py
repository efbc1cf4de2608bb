# SPDX-License-Identifier: BSD-3-Clause
"""Reusable contract test suites: subclass them to test another implementation."""

from .registry import RegistryTests

__all__ = ["RegistryTests"]
