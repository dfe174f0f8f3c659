"""Which grid worker a camera's incidents go to: pure lookups over the site configuration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from broker.siteconfig import GridCellConfig, SiteConfig
from central.workflow.grid import GridTree, Node


@dataclass(frozen=True, slots=True)
class Route:
    grid_cell: str | None
    worker: str | None


class GridRouter:
    """camera -> grid cell -> its first worker, else the nearest ancestor cell that has one."""

    def __init__(self, site: SiteConfig | None) -> None:
        self.site_id = site.site if site else None
        self._camera_cell: dict[str, str | None] = {}
        self._edge_cameras: dict[str, frozenset[str]] = {}
        self._cells = {}
        if site is not None:
            self._cells = {cell.code: cell for cell in site.grid}
            for edge in site.edges:
                self._edge_cameras[edge.id] = frozenset(camera.id for camera in edge.cameras)
                for camera in edge.cameras:
                    self._camera_cell[camera.id] = camera.grid_cell

    @property
    def tree(self) -> GridTree:
        return tree_from_cells(self._cells.values())

    def default_engine(self):
        """The vertical slice's behaviour: register and dispatch everything at once."""
        from central.workflow.config import WorkflowConfig
        from central.workflow.engine import WorkflowEngine

        return WorkflowEngine(WorkflowConfig(), self.tree)

    def unknown_origin(self, site: str, edge: str, camera: str) -> str | None:
        """Why an event from this site, edge and camera is not central's to file (None: it is).

        Central without a site configuration (the vertical slice) takes every origin."""
        if self.site_id is None:
            return None
        if site != self.site_id:
            return f"unknown site {site!r}: this central serves site {self.site_id!r}"
        cameras = self._edge_cameras.get(edge)
        if cameras is None:
            return f"unknown edge {edge!r}: not an edge of site {site!r} in central's site configuration"
        if camera not in cameras:
            return f"unknown camera {camera!r}: not a camera of edge {edge!r} in central's site configuration"
        return None

    def route(self, site: str, camera: str) -> Route:
        if site != self.site_id:
            return Route(None, None)
        cell_code = self._camera_cell.get(camera)
        code = cell_code
        seen: set[str] = set()
        while code is not None and code not in seen:
            seen.add(code)
            cell = self._cells.get(code)
            if cell is None:
                break
            if cell.workers:
                return Route(cell_code, cell.workers[0])
            code = cell.parent
        return Route(cell_code, None)


def tree_from_cells(cells: Iterable[GridCellConfig]) -> GridTree:
    return GridTree.of(
        Node(c.code, c.name, c.level, c.parent, tuple(c.workers), tuple((float(x), float(y)) for x, y in c.area) if c.area else None)
        for c in cells
    )
