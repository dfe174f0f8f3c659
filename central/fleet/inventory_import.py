"""``sharpeyes central inventory import`` and ``export``: a site YAML (its edges and cameras) or a
city platform's camera catalogue (CSV) brought into the database as one new version per edge it
changes, and the inventory written back as YAML that imports to the same state.

Nothing is stored unless the whole file is good: every problem (each bad row of a CSV with its
line and column, each bad key of a YAML) is reported at once."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.cameraconfig import EdgeConfig
from broker.configbase import ConfigError, expand_env, read_yaml
from central.fleet import inventory
from central.fleet.catalogue_csv import catalogue_edges, parse_catalogue
from central.fleet.inventory_plan import Plan, State, cameras_of, duplicate_cameras, next_state, plan, validate_edge
from central.store.inventory_tables import InventoryEdge
from central.store.tables import GridNode

# Camera URLs stay ${VAR} references in the database, as in central's copy of the site file.
_KEPT = re.compile(r"^edges\[\d+\]\.cameras\[\d+\]\.(url|detect_url)$")


@dataclass
class ImportResult:
    site: str
    plan: Plan | None = None
    problems: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)  # edge -> the version stored


def _known_site(session: Session) -> list[str]:
    return list(session.scalars(select(InventoryEdge.site).distinct()))


def _grid(session: Session, extra: list[str]) -> frozenset[str] | None:
    cells = set(session.scalars(select(GridNode.code))) | set(extra)
    return frozenset(cells) if cells else None  # no grid anywhere: nothing to check cells against


def _read_yaml(path: Path) -> tuple[str | None, list[Any], list[str], list[str]]:
    """(site, edges data, grid codes, problems) of a site YAML; its users, broker and the rest are not read."""
    doc = read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("edges", []), list):
        return None, [], [], ["(top level): expected a site file: a mapping with edges: [...]"]
    edges = expand_env({"edges": doc.get("edges") or []}, str(path), keep=_KEPT)["edges"]
    grid = [str(g.get("code")) for g in doc.get("grid") or [] if isinstance(g, dict)]
    site = doc.get("site")
    return (str(site) if site is not None else None), edges, grid, []


def prepare(session: Session, path: Path, *, site: str | None = None, edge: str | None = None) -> tuple[
        ImportResult, State]:
    """What importing PATH would do, against the inventory now: (result with its plan or problems, the
    current state). A ``.csv`` is a catalogue; anything else a site YAML."""
    sites = _known_site(session)
    csv_file = path.suffix.lower() == ".csv"
    grid: list[str] = []
    if csv_file:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(path, [f"cannot read it as UTF-8 text: {exc} (fix: export the catalogue as UTF-8 CSV)"]) from None
        data_site = None
        edges_data: list[Any] = []
    else:
        data_site, edges_data, grid, problems = _read_yaml(path)
        if problems:
            raise ConfigError(path, problems)
    site = site or data_site or (sites[0] if len(sites) == 1 else None)
    if site is None:
        raise ConfigError(path, ["no site named (fix: give --site, or import a site YAML with site: first)"])
    result = ImportResult(site)
    if sites and site not in sites:
        result.problems.append(f"site {site!r} is not the inventory's ({', '.join(sites)}) (fix: --site {sites[0]})")
        return result, {}
    current = inventory.current_state(session, site)
    cells = _grid(session, grid)
    incoming: State = {}
    if csv_file:
        rows, row_problems = parse_catalogue(text, edge, cells)
        result.problems += [str(p) for p in row_problems]
        raw = catalogue_edges(current, rows)
        where = {e: f"edge {e}" for e in raw}
    else:
        raw = {}
        for i, data in enumerate(edges_data):
            name = data.get("id") if isinstance(data, dict) else None
            if edge is not None and name != edge:
                continue
            raw[str(name) if name is not None else f"#{i}"] = data
        where = {e: f"edges[{i}]" for i, e in enumerate(raw)}
    for edge_id, data in raw.items():
        checked, problems = validate_edge(data, where[edge_id])
        result.problems += problems
        if checked is not None:
            incoming[edge_id] = checked
            if cells is not None:
                result.problems += [f"{where[edge_id]}: camera {c} is mapped to grid cell {cam.get('grid_cell')!r}, "
                                    "which is not in the grid (fix: add it under grid:, or PUT /api/v1/grid/CODE)"
                                    for c, cam in cameras_of(checked).items()
                                    if cam.get("grid_cell") is not None and cam["grid_cell"] not in cells]
    if result.problems:
        return result, current
    steps = plan(current, incoming)
    result.problems += duplicate_cameras(next_state(current, steps))
    if not result.problems:
        result.plan = steps
    return result, current


def apply(session: Session, result: ImportResult, *, reason: str | None, at: datetime) -> None:
    """Store one version per changed edge (actor ``inventory import``), each with its ``config``
    command, committed together; a running central sends the commands and serves the change."""
    assert result.plan is not None
    for step in result.plan.edges:
        change, _ = inventory.store_version(session, result.site, EdgeConfig.model_validate(step.config),
                                            edge_id=step.edge, actor=inventory.IMPORT_ACTOR, action="import",
                                            at=at, reason=reason or "inventory import")
        result.versions[step.edge] = change.version
    session.commit()


def export_yaml(session: Session, site: str | None = None) -> str:
    sites = _known_site(session)
    site = site or (sites[0] if len(sites) == 1 else None)
    if site is None:
        raise ConfigError("inventory", ["the inventory holds no site, or several (fix: --site SITE)"
                                        if len(sites) != 1 else ""])
    document = inventory.export_document(site, inventory.current_state(session, site))
    head = (f"# The inventory of site {site} (sharpeyes central inventory export): edges and cameras as central's\n"
            "# database has them. `sharpeyes central inventory import` of this file changes nothing.\n")
    return head + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=120)
