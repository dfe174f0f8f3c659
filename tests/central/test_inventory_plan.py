"""The inventory's pure parts, on plain data: the import plan (added, changed, moved, retired),
catalogue CSV rows (every bad row named with line, column and fix), and the URL rule."""

from __future__ import annotations

from central.fleet.catalogue_csv import catalogue_edges, parse_catalogue
from central.fleet.inventory_plan import duplicate_cameras, literal_credentials, plan, validate_edge


def cam(camera_id: str, **extra: object) -> dict[str, object]:
    return {"id": camera_id, "url": f"rtsp://10.0.0.1/{camera_id}", **extra}


def test_plan_names_added_changed_moved_and_retired_per_edge() -> None:
    current = {"e1": {"id": "e1", "cameras": [cam("a"), cam("b"), cam("c")]}, "e2": {"id": "e2", "cameras": [cam("d")]}}
    incoming = {"e1": {"id": "e1", "cameras": [cam("a", grid_cell="g1"), cam("new")]},
                "e3": {"id": "e3", "cameras": [cam("b"), cam("d")]}}
    steps = {s.edge: s for s in plan(current, incoming).edges}
    assert steps["e1"].changed == ["a"] and steps["e1"].added == ["new"] and steps["e1"].retired == ["c"]
    assert steps["e1"].moved_out == ["b (to e3)"]
    assert steps["e3"].new_edge and steps["e3"].moved_in == ["b (from e1)", "d (from e2)"]
    # e2 is not in the import but loses the camera moved away from it.
    assert steps["e2"].moved_out == ["d (to e3)"] and steps["e2"].config["cameras"] == []
    assert plan(current, {"e2": current["e2"]}).edges == []


def test_duplicate_camera_ids_across_edges_are_named() -> None:
    problems = duplicate_cameras({"e1": {"cameras": [cam("a")]}, "e2": {"cameras": [cam("a")]}})
    assert problems and "'a'" in problems[0] and "e1" in problems[0] and "e2" in problems[0]


def test_urls_carry_references_never_credentials() -> None:
    assert literal_credentials("rtsp://admin:Hik12345@10.0.0.2/ch1")
    assert literal_credentials("rtsp://admin@10.0.0.2/ch1")
    assert not literal_credentials("rtsp://viewer:${CAM_PW}@10.0.0.2/ch1")
    assert not literal_credentials("rtsp://10.0.0.2/ch1?user=x@y")
    stored, problems = validate_edge({"id": "e1", "cameras": [cam("a", url="rtsp://u:p@10.0.0.2/x")]}, "edges[0]")
    assert stored is None and problems[0].startswith("edges[0].cameras[0].url:") and "CAM_A_PASSWORD" in problems[0]
    stored, problems = validate_edge({"id": "e1", "cameras": [cam("a", fps=3)]}, "edges[0]")
    assert stored is None and problems == ["edges[0].cameras[0].fps: Extra inputs are not permitted "
                                           "(fix: remove this key or check its spelling)"]


HEADER = "通道编号,名称,网格,取流地址,经度,纬度,edge\n"


def test_catalogue_rows_become_cameras_and_keep_what_the_catalogue_does_not_say() -> None:
    text = HEADER + ("11010100001320000001,东门,g1,rtsp://${CAM_PW}@10.0.0.1/1,116.39,39.91,e1\n"
                     "11010100001320000002,西门,,rtsp://10.0.0.1/2,,,e1\n")
    rows, problems = parse_catalogue(text, cells_known=frozenset({"g1"}))
    assert problems == [] and [r.id for r in rows] == ["11010100001320000001", "11010100001320000002"]
    zones = [{"id": "z", "kind": "fire_lane", "polygon": [[0, 0], [1, 0], [1, 1]]}]
    current = {"e9": {"id": "e9", "cameras": [cam("11010100001320000001", zones=zones, model="m1")]}}
    edges = catalogue_edges(current, rows)
    first = edges["e1"]["cameras"][0]
    assert first["zones"] == zones and first["model"] == "m1" and first["name"] == "东门"
    assert first["location"] == {"lon": 116.39, "lat": 39.91} and first["gb28181_channel_id"] == first["id"]
    assert "location" not in edges["e1"]["cameras"][1]


def test_a_bad_catalogue_names_every_bad_row() -> None:
    text = HEADER + ("11010100001320000001,ok,g1,rtsp://10.0.0.1/1,116.39,39.91,e1\n"
                     "1101,short id,g1,rtsp://10.0.0.1/2,116.39,39.91,e1\n"
                     "11010100001320000003,creds,g1,rtsp://admin:pw@10.0.0.1/3,116.39,39.91,e1\n"
                     "11010100001320000004,far,g9,rtsp://10.0.0.1/4,200,39.91,\n"
                     "11010100001320000001,again,g1,rtsp://10.0.0.1/5,,,e1\n")
    rows, problems = parse_catalogue(text, cells_known=frozenset({"g1"}))
    assert rows == []
    named = [(p.line, p.column) for p in problems]
    assert (3, "channel_id") in named and (4, "url") in named
    assert {(5, "grid_cell"), (5, "lon"), (5, "edge")} <= set(named)
    assert (6, "id") in named and all(p.fix for p in problems)
    assert "line 4, column url:" in str(problems[[n for n in named].index((4, "url"))])


def test_a_catalogue_without_the_needed_columns_says_which() -> None:
    _, problems = parse_catalogue("名称,经度\nx,1\n")
    assert {p.column for p in problems} == {"url", "channel_id", "edge"}
    rows, problems = parse_catalogue("channel id,url\n11010100001320000001,rtsp://h/1\n", default_edge="e1")
    assert problems == [] and rows[0].edge == "e1"
