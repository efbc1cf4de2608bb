# SPDX-License-Identifier: BSD-3-Clause
"""Pipeline definitions shipped with spherex_dask (YAML files; ``pipelines/`` in a clone).

Load one with ``Pipeline.from_yaml("pipelines/DarkSubtraction.yaml")`` from a clone, or
``spherex_dask.demo.builtin_pipeline("DarkSubtraction")`` from an installed package.
"""
