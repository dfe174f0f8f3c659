"""A city video platform's camera catalogue as CSV (channel id, name, grid cell, URL reference,
longitude, latitude, and the edge that runs each camera), read and checked row by row on plain
text: every bad row is named (line, column, problem, fix), so one pass over the file finds them all.

Headers are matched loosely (case, spaces, ``-`` and the Chinese names such platforms export); the
camera id is the ``id`` column where there is one, else the channel id (20 digits, a valid id)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

from broker.topics import ID_PATTERN
from central.fleet.inventory_plan import State, cameras_of, literal_credentials, url_fix

_ID = re.compile(f"^{ID_PATTERN}$")
_CHANNEL = re.compile(r"^\d{20}$")
_STREAM = re.compile(r"^(rtsp|rtsps|file)://")

# Column -> the header spellings taken for it (compared lower-case, spaces and '-' as '_').
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "camera", "camera_id", "摄像机编号"),
    "channel_id": ("channel_id", "channel", "gb28181_channel_id", "gb_id", "通道编号", "国标编号"),
    "name": ("name", "camera_name", "名称", "点位名称"),
    "grid_cell": ("grid_cell", "grid", "网格", "网格编码"),
    "url": ("url", "url_reference", "url_ref", "stream_url", "取流地址"),
    "lon": ("lon", "lng", "longitude", "经度"),
    "lat": ("lat", "latitude", "纬度"),
    "edge": ("edge", "edge_id", "边缘节点"),
}
CATALOGUE_FIELDS = ("name", "gb28181_channel_id", "grid_cell", "url", "location")


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.problem} (fix: {self.fix})"


@dataclass(frozen=True)
class CatalogueRow:
    line: int
    id: str
    edge: str
    channel_id: str | None
    name: str | None
    grid_cell: str | None
    url: str
    lon: float | None
    lat: float | None

    def fields(self) -> dict[str, Any]:
        """The camera configuration's keys this row sets (the rest of a known camera is kept)."""
        location = {"lon": self.lon, "lat": self.lat} if self.lon is not None and self.lat is not None else None
        return {"name": self.name, "gb28181_channel_id": self.channel_id, "grid_cell": self.grid_cell,
                "url": self.url, "location": location}


def _header_map(header: list[str]) -> dict[str, int]:
    spelled = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}
    found: dict[str, int] = {}
    for i, raw in enumerate(header):
        key = re.sub(r"[\s-]+", "_", raw.strip().lstrip("\ufeff").lower())
        if key in spelled and spelled[key] not in found:
            found[spelled[key]] = i
    return found


def _number(text: str, low: float, high: float) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if low <= value <= high else None


def _row(line: int, cells: dict[str, str], default_edge: str | None, cells_known: frozenset[str] | None,
         problems: list[RowProblem]) -> CatalogueRow | None:
    start = len(problems)

    def bad(column: str, problem: str, fix: str) -> None:
        problems.append(RowProblem(line, column, problem, fix))

    channel = cells.get("channel_id") or None
    if channel is not None and not _CHANNEL.match(channel):
        bad("channel_id", f"{channel!r} is not a GB/T 28181 channel id", "write its 20 digits, e.g. 11010100001320000001")
    camera_id = cells.get("id") or channel or ""
    if not camera_id:
        bad("id", "no camera id and no channel id", "fill in the channel id (or an id column)")
    elif not _ID.match(camera_id) or len(camera_id) > 64:
        bad("id", f"{camera_id!r} is not a valid camera id", "use lower-case letters, digits and '-' (64 at most)")
    edge = cells.get("edge") or default_edge or ""
    if not edge:
        bad("edge", "no edge named", "fill in the edge column, or give --edge for the whole file")
    elif not _ID.match(edge) or len(edge) > 64:
        bad("edge", f"{edge!r} is not a valid edge id", "use lower-case letters, digits and '-' (64 at most)")
    name = cells.get("name") or None
    if name is not None and len(name) > 200:
        bad("name", f"the name is {len(name)} characters long", "shorten it to 200 characters")
    grid = cells.get("grid_cell") or None
    if grid is not None and cells_known is not None and grid not in cells_known:
        bad("grid_cell", f"grid cell {grid!r} is not in the grid", "use a code of GET /api/v1/grid, or add the cell first")
    url = cells.get("url", "")
    if not url:
        bad("url", "no stream URL", "fill in the URL reference, e.g. rtsp://user:${CAM_PASSWORD}@10.0.0.2/ch1")
    elif not url.startswith("${") and not _STREAM.match(url):
        bad("url", f"{url[:60]!r} is not a stream URL", "start it with rtsp:// (or rtsps://, file:// for a recording)")
    elif literal_credentials(url):
        bad("url", "the URL carries a user name or password in plain text", url_fix(camera_id or "x"))
    lon_text, lat_text = cells.get("lon", ""), cells.get("lat", "")
    lon = _number(lon_text, -180, 180) if lon_text else None
    lat = _number(lat_text, -90, 90) if lat_text else None
    if lon_text and lon is None:
        bad("lon", f"{lon_text!r} is not a longitude", "a number of degrees east between -180 and 180 (WGS84)")
    if lat_text and lat is None:
        bad("lat", f"{lat_text!r} is not a latitude", "a number of degrees north between -90 and 90 (WGS84)")
    if bool(lon_text) != bool(lat_text):
        bad("lat" if lon_text else "lon", "only one of longitude and latitude is given", "give both, or neither")
    if len(problems) > start:
        return None
    return CatalogueRow(line, camera_id, edge, channel, name, grid, url, lon, lat)


def parse_catalogue(text: str, default_edge: str | None = None,
                    cells_known: frozenset[str] | None = None) -> tuple[list[CatalogueRow], list[RowProblem]]:
    """The rows of a catalogue CSV, or every problem in it (a bad row refuses the whole file)."""
    table = list(csv.reader(io.StringIO(text)))
    problems: list[RowProblem] = []
    if not table:
        return [], [RowProblem(1, "(header)", "the file is empty", "export the catalogue with its header line")]
    header = _header_map(table[0])
    for column in ("url",):
        if column not in header:
            problems.append(RowProblem(1, column, f"no {column} column",
                                       f"add a column named one of {', '.join(COLUMNS[column])}"))
    if "id" not in header and "channel_id" not in header:
        problems.append(RowProblem(1, "channel_id", "no channel id column and no id column",
                                   f"add a column named one of {', '.join(COLUMNS['channel_id'])}"))
    if "edge" not in header and default_edge is None:
        problems.append(RowProblem(1, "edge", "no edge column", "add an edge column, or give --edge for the whole file"))
    if problems:
        return [], problems
    rows: list[CatalogueRow] = []
    first_line: dict[str, int] = {}
    channel_line: dict[str, int] = {}
    for number, raw in enumerate(table[1:], start=2):
        if not any(cell.strip() for cell in raw):
            continue
        cells = {column: raw[i].strip() if i < len(raw) else "" for column, i in header.items()}
        row = _row(number, cells, default_edge, cells_known, problems)
        if row is None:
            continue
        if row.id in first_line:
            problems.append(RowProblem(number, "id", f"camera {row.id!r} is also on line {first_line[row.id]}",
                                       "list each camera once"))
            continue
        if row.channel_id is not None and row.channel_id in channel_line:
            problems.append(RowProblem(number, "channel_id", f"channel id {row.channel_id} is also on line "
                                       f"{channel_line[row.channel_id]}", "each channel is one camera: list it once"))
            continue
        first_line[row.id] = number
        if row.channel_id is not None:
            channel_line[row.channel_id] = number
        rows.append(row)
    return (rows, []) if not problems else ([], problems)


def catalogue_edges(current: State, rows: list[CatalogueRow]) -> State:
    """The edges the catalogue names, each with exactly its rows' cameras in the file's order: a
    camera already on record (on any edge) keeps its zones, model and the rest, with the catalogue's
    fields written over them; a new one gets the site file's defaults; an edge's cameras the
    catalogue leaves out are gone from it (retired, unless another edge takes them)."""
    known = {cid: camera for data in current.values() for cid, camera in cameras_of(data).items()}
    edges: State = {}
    for row in rows:
        edge = edges.get(row.edge)
        if edge is None:
            base = current.get(row.edge) or {"id": row.edge}
            edge = edges[row.edge] = {**base, "cameras": []}
        camera = dict(known.get(row.id) or {"id": row.id})
        for key, value in row.fields().items():
            if value is None:
                camera.pop(key, None)
            else:
                camera[key] = value
        edge["cameras"].append(camera)
    return edges
