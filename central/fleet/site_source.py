"""Central's copy of the site: the site file's own parts (site, broker, central link, grid, workers,
users) with the edges and cameras of the database's newest versions (retired ones left out).

Every replica keeps the copy in memory and, before each API request (and once a second in a
process without requests), compares one cheap fingerprint of the inventory with the one it was
built from; when another process stored a version it reloads only the edges whose newest version
moved. A change is then served by every replica from the next request on, at the price of one
aggregate over ``inventory_edges`` (a row per edge) per request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from broker.cameraconfig import EdgeConfig
from broker.configbase import ConfigError
from broker.siteconfig import SiteConfig
from central.fleet import inventory
from central.fleet.inventory_plan import EdgeData, duplicate_cameras, plan, url_problems
from central.workflow.audit import canonical

log = logging.getLogger(__name__)

IMPORT_COMMAND = "sharpeyes central inventory import"


class SiteSource:
    def __init__(self, file_site: SiteConfig, sessions: sessionmaker[Session], file_path: str | None = None) -> None:
        self.file = file_site
        self.file_path = file_path
        self.sessions = sessions
        self._edges: dict[str, tuple[int, EdgeConfig]] = {}
        self._revision: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.site: SiteConfig = file_site.model_copy(update={"edges": []})
        # Edges whose configuration in the site file differs from the database's (shown, never applied).
        self.file_differences: list[dict[str, Any]] = []
        self.on_change: list[Callable[[SiteConfig], None]] = []

    def change_id(self, edge: str) -> int | None:
        """The row id of the version this process's copy holds for EDGE (None: not on record)."""
        found = self._edges.get(edge)
        return found[0] if found else None

    def refresh(self, session: Session | None = None) -> SiteConfig:
        """The current site, reloaded first where the inventory moved since it was built."""
        with self._lock:
            if session is None:
                with self.sessions() as own:
                    return self._refresh(own)
            return self._refresh(session)

    def _refresh(self, session: Session) -> SiteConfig:
        now = inventory.revision(session, self.file.site)
        if now == self._revision:
            return self.site
        ids = inventory.edge_ids(session, self.file.site)
        stale = [cid for edge, cid in ids.items() if self.change_id(edge) != cid]
        for record in inventory.load_edges(session, self.file.site, stale) if stale else []:
            try:
                self._edges[record.edge] = (record.change_id, EdgeConfig.model_validate(record.config))
            except ValidationError as exc:  # stored by another version of central: keep what was running
                log.error("edge %s: version %d cannot be read (%s); keeping the configuration running before",
                          record.edge, record.version, str(exc).splitlines()[0])
        for edge in [e for e in self._edges if e not in ids]:
            del self._edges[edge]  # retired
        self._revision = now
        self._publish()
        return self.site

    def adopt(self, site: SiteConfig, change_ids: dict[str, int | None]) -> None:
        """Take SITE as the copy after this process committed versions (CHANGE_IDS; None: retired)."""
        with self._lock:
            edges = {e.id: e for e in site.edges}
            for edge, cid in change_ids.items():
                if cid is None or edge not in edges:
                    self._edges.pop(edge, None)
                else:
                    self._edges[edge] = (cid, edges[edge])
            self._revision = None  # the next request checks the database again, cheaply
            self._publish()

    def _publish(self) -> None:
        edges = [self._edges[e][1] for e in sorted(self._edges)]
        self.site = self.file.model_copy(update={"edges": edges})
        for listener in self.on_change:
            listener(self.site)

    def start(self, session: Session, at: Any, *, first_try: bool = True) -> SiteConfig:
        """The copy at start-up. An empty inventory takes the site file's edges as their first versions
        (later starts leave the database as it is); an edge the file describes otherwise is logged
        and listed in ``file_differences``, with the command that applies the file."""
        site = self.file.site
        if inventory.is_empty(session, site):
            problems = [p for i, e in enumerate(self.file.edges)
                        for p in url_problems(e.model_dump(mode="json"), f"edges[{i}]")]
            problems += duplicate_cameras({e.id: e.model_dump(mode="json") for e in self.file.edges})
            if problems:
                raise ConfigError(self.file_path or "site file", problems)
            try:
                for edge in self.file.edges:
                    inventory.store_version(session, site, edge, edge_id=edge.id, actor=inventory.FIRST_START_ACTOR,
                                            action="import", at=at, command=False,
                                            reason="the site file's configuration, taken on central's first start "
                                                   "with this database")
                session.commit()
            except IntegrityError:
                if not first_try:
                    raise
                # Another process (a worker started beside this one) took the file first: its
                # versions are the first ones, and this process reads them like a later start.
                session.rollback()
                log.info("inventory: another central process took the site file first; using its versions")
                return self.start(session, at, first_try=False)
            if self.file.edges:
                log.info("inventory: took %d edge(s) from the site file as their first versions; from now on the "
                         "database is the source of truth (%s FILE applies a file again)",
                         len(self.file.edges), IMPORT_COMMAND)
        else:
            self.file_differences = self._differences(inventory.current_state(session, site))
            for diff in self.file_differences:
                log.warning("edge %s: the site file differs from the database (%s); the database's configuration "
                            "is used. To apply the file: %s %s", diff["edge"], "; ".join(diff["changes"]),
                            IMPORT_COMMAND, self.file_path or "FILE")
        return self.refresh(session)

    def _differences(self, state: dict[str, EdgeData]) -> list[dict[str, Any]]:
        incoming = {e.id: e.model_dump(mode="json") for e in self.file.edges}
        mine = {e: d for e, d in incoming.items() if canonical(state.get(e)) != canonical(d)}
        steps = plan(state, mine)
        return [{"edge": step.edge, "changes": step.lines() or ["settings"]}
                for step in steps.edges if step.edge in mine]
