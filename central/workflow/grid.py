"""The grid tree (street → community → grid cell): ancestors, subtrees and scopes (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Node:
    code: str
    name: str
    level: str
    parent: str | None
    workers: tuple[str, ...] = ()
    area: tuple[tuple[float, float], ...] | None = None


@dataclass
class GridTree:
    nodes: dict[str, Node] = field(default_factory=dict)

    @classmethod
    def of(cls, nodes: Iterable[Node]) -> GridTree:
        return cls({n.code: n for n in nodes})

    def children(self, code: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.parent == code]

    def ancestors(self, code: str | None) -> list[Node]:
        """The node's parent, grandparent, ... (cycle-safe)."""
        out: list[Node] = []
        seen = {code}
        node = self.nodes.get(code) if code else None
        while node is not None and node.parent is not None and node.parent not in seen:
            seen.add(node.parent)
            node = self.nodes.get(node.parent)
            if node is not None:
                out.append(node)
        return out

    def subtree(self, codes: Iterable[str]) -> frozenset[str]:
        found: set[str] = set()
        stack = [c for c in codes if c in self.nodes]
        while stack:
            code = stack.pop()
            if code in found:
                continue
            found.add(code)
            stack.extend(n.code for n in self.children(code))
        return frozenset(found)

    def cells_of_worker(self, worker: str) -> list[str]:
        return [n.code for n in self.nodes.values() if worker in n.workers]

    def depth(self, code: str) -> int:
        return len(self.ancestors(code))

    def locate(self, lon: float, lat: float) -> str | None:
        """The deepest node whose area contains the point."""
        best: tuple[int, str] | None = None
        for node in self.nodes.values():
            if node.area and point_in_polygon(lon, lat, node.area):
                d = self.depth(node.code)
                if best is None or d > best[0]:
                    best = (d, node.code)
        return best[1] if best else None


def point_in_polygon(x: float, y: float, polygon: Iterable[tuple[float, float]]) -> bool:
    """Ray casting; points on an edge may fall either way, which does not matter for routing."""
    pts = list(polygon)
    inside = False
    j = len(pts) - 1
    for i in range(len(pts)):
        xi, yi = pts[i]
        xj, yj = pts[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


WHOLE_SITE_ROLES = frozenset({"admin", "monitor", "supervisor"})


def scope_for(tree: GridTree, role: str, grid: Iterable[str], worker: str | None) -> frozenset[str] | None:
    """The grid codes a user covers; None means the whole site.

    admin always, and monitor/supervisor with no grid nodes, cover the site; a grid worker
    covers the cells listing their worker id (not below) plus the subtrees given to them.
    """
    grid = list(grid or [])
    if role == "admin" or (role in WHOLE_SITE_ROLES and not grid):
        return None
    scope = tree.subtree(grid)
    if role == "grid_worker" and worker:
        # Their own cells only: a worker listed on a community node is not every cell's worker.
        scope |= frozenset(tree.cells_of_worker(worker))
    return scope
