# SPDX-License-Identifier: BSD-3-Clause
"""Built-in pipeline tasks."""

from ._stack import StackConfig, StackTask
from ._subtract import SubtractDarkConfig, SubtractDarkTask

__all__ = ["StackConfig", "StackTask", "SubtractDarkConfig", "SubtractDarkTask"]
