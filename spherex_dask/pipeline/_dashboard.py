# SPDX-License-Identifier: BSD-3-Clause
"""The local cluster's Bokeh dashboard, loaded when someone first opens it.

A scheduler started with its dashboard imports Bokeh and distributed's dashboard modules as it
starts: about 0.7 s of CPU here, in the process that is also importing the registry and
building the quantum graph while the workers start, on a machine with two cores. Most runs
-- batch jobs, tests, scripts -- never open it.

The local cluster's scheduler therefore starts with its HTTP server (health, metrics, the
JSON routes) but without the Bokeh application. :func:`load_dashboard_on_first_visit` puts a
stand-in behind the server's own routes: the first request of any other page imports the
dashboard (in a thread, so that the scheduler keeps scheduling), connects it exactly as the
scheduler would have, steps aside and redirects to the same page, which the dashboard then
serves. The link printed at the start of a run works from the first second; its first page
takes that 0.7 s longer to load.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import TYPE_CHECKING, Any

from tornado import web

if TYPE_CHECKING:
    import distributed

__all__ = ["load_dashboard_on_first_visit"]

logger = logging.getLogger(__name__)

#: The module distributed's scheduler imports for its dashboard (it imports Bokeh).
DASHBOARD_MODULE = "distributed.dashboard.scheduler"


class _Loader:
    """Connects the dashboard to one scheduler's HTTP server, once."""

    def __init__(self, scheduler: distributed.Scheduler, prefix: str) -> None:
        self.scheduler = scheduler
        self.prefix = prefix
        self.stand_in: web.Application | None = None
        self._task: asyncio.Future[str] | None = None

    async def load(self) -> str:
        """Connect the dashboard if it is not yet; return an error message, or ``""``."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._load())
        return await asyncio.shield(self._task)

    async def _load(self) -> str:
        loop = asyncio.get_running_loop()
        try:
            module: Any = await loop.run_in_executor(
                None, importlib.import_module, DASHBOARD_MODULE
            )
        except ImportError as err:
            from distributed.versions import BOKEH_REQUIREMENT

            logger.warning("The Dask dashboard needs %s: %s", BOKEH_REQUIREMENT, err)
            return f"Dask needs {BOKEH_REQUIREMENT} for the dashboard: pip install '{BOKEH_REQUIREMENT}'"
        application = self.scheduler.http_application
        if self.stand_in in application.applications:
            application.applications.remove(self.stand_in)
        module.connect(application, self.scheduler.http_server, self.scheduler, prefix=self.prefix)
        logger.debug("Dask dashboard loaded on its first visit")
        return ""


class _FirstVisitHandler(web.RequestHandler):
    """Any page the server does not serve yet: load the dashboard, then ask again."""

    def initialize(self, loader: _Loader) -> None:
        self.loader = loader

    async def get(self) -> None:
        error = await self.loader.load()
        if error:
            self.set_status(404)
            self.write(f"<p>{error}</p>")
            return
        self.redirect(self.request.uri or "/")

    head = get


def load_dashboard_on_first_visit(scheduler: distributed.Scheduler, prefix: str = "/") -> None:
    """Have ``scheduler``'s HTTP server load the Bokeh dashboard on its first other request.

    Parameters
    ----------
    scheduler : `distributed.Scheduler`
        An in-process scheduler started with ``dashboard=False`` and a ``dashboard_address``
        (its HTTP server runs, without the Bokeh application).
    prefix : `str`, optional
        The scheduler's ``http_prefix``.
    """
    loader = _Loader(scheduler, prefix)
    loader.stand_in = web.Application([(r"/.*", _FirstVisitHandler, {"loader": loader})])
    scheduler.http_application.add_application(loader.stand_in)
