"""The benchmark's table (rich) and its Markdown twin for docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

from sharpeyes.bench.procstat import THREAD_KINDS


def _fmt(value: Any, spec: str = "", unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return f"{value:{spec}}{unit}"


COLUMNS = ("figure", "edge", "edge without the scene gate", "floor", "peer (Ultralytics)", "peer on the edge's fitted graph")


def _column(s: dict[str, Any], prefix: str, cameras: int | None, vs_edge: str) -> dict[str, str]:
    """One more contestant's figures, by row label, from its ``{prefix}_*`` keys of the summary."""
    measured = s.get(f"{prefix}_cpu_per_camera_s") is not None
    return {
        "cameras measured": _fmt(cameras if measured else None),
        "cameras sustained (≥95 % samples on time)": _fmt(s.get(f"{prefix}_cameras_sustained")),
        "worst camera: share of samples on time": _fmt(s.get(f"{prefix}_on_time_share_min"), ".1%"),
        "CPU s per camera-second": _fmt(s.get(f"{prefix}_cpu_per_camera_s"), ".4f"),
        "edge CPU ÷ this": _fmt(s.get(vs_edge), ".2f", "×"),
        "samples analysed in the window": _fmt(s.get(f"{prefix}_samples")),
        "CPU ms per analysed sample": _fmt(s.get(f"{prefix}_cpu_ms_per_sample"), ".0f"),
        "decode ms per sample (wall)": _fmt(s.get(f"{prefix}_decode_ms_per_sample"), ".1f"),
        "inference ms per sample (wall)": _fmt(s.get(f"{prefix}_infer_ms_per_sample"), ".1f"),
        "RSS MB (peak in window)": _fmt(s.get(f"{prefix}_rss_mb"), ".0f"),
        "whole machine busy in window (cores)": _fmt(s.get(f"{prefix}_machine_busy_cores"), ".2f"),
    }


def rows(summary: dict[str, Any]) -> list[tuple[str, ...]]:
    """(figure, edge, edge without the gate, floor, peer, peer on the fitted graph) rows for the
    terminal and Markdown tables."""
    s = summary
    ungated = _column(s, "ungated", s["cameras"], "gated_vs_ungated")
    fitted = _column(s, "peer_fitted", s["peer_cameras"], "edge_vs_peer_fitted")
    return [(row[0], row[1], ungated.get(row[0], "—"), *row[2:], fitted.get(row[0], "—")) for row in _rows(s)]


def _rows(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return [
        ("cameras measured", _fmt(s["cameras"]), _fmt(s["cameras"] if s["floor_cpu_per_camera_s"] is not None else None),
         _fmt(s["peer_cameras"] or None)),
        ("cameras sustained (≥95 % samples on time)", f"{s['cameras_sustained']}/{s['cameras']}",
         _fmt(s.get("floor_cameras_sustained")), _fmt(s.get("peer_cameras_sustained"))),
        ("worst camera: share of samples on time", _fmt(s["on_time_share_min"], ".1%"), _fmt(s.get("floor_on_time_share_min"), ".1%"),
         _fmt(s.get("peer_on_time_share_min"), ".1%")),
        ("CPU s per camera-second", _fmt(s["cpu_per_camera_s"], ".4f"), _fmt(s["floor_cpu_per_camera_s"], ".4f"),
         _fmt(s["peer_cpu_per_camera_s"], ".4f")),
        ("edge CPU ÷ this", "1.00", _fmt(s["edge_vs_floor"], ".2f", "×"), _fmt(s["edge_vs_peer"], ".2f", "×")),
        ("samples analysed in the window", _fmt(s.get("samples")), _fmt(s.get("floor_samples")), _fmt(s.get("peer_samples"))),
        ("  of which the scene gate answered", _fmt(s.get("gated_share"), ".0%"), "—", "—"),
        ("CPU ms per analysed sample", _fmt(s.get("cpu_ms_per_sample"), ".0f"), _fmt(s.get("floor_cpu_ms_per_sample"), ".0f"),
         _fmt(s.get("peer_cpu_ms_per_sample"), ".0f")),
        ("decode ms per sample (wall)", _fmt(s["decode_ms_per_sample"], ".1f"), _fmt(s.get("floor_decode_ms_per_sample"), ".1f"), "—"),
        ("inference ms per sample (wall)", _fmt(s["infer_ms_per_sample"], ".1f"), _fmt(s.get("floor_infer_ms_per_sample"), ".1f"),
         _fmt(s.get("peer_infer_ms_per_sample"), ".1f")),
        ("whole sample ms p95 (wall)", _fmt(s["sample_ms_p95"], ".0f"), "—", "—"),
        ("RSS MB (peak in window)", _fmt(s["rss_mb"], ".0f"), _fmt(s["floor_rss_mb"], ".0f"), _fmt(s["peer_rss_mb"], ".0f")),
        ("dwell threshold → event on broker, p95 ms", _fmt(s["alert_latency_ms_p95"], ".0f"), "—", "—"),
        ("alerts received / cameras", f"{s['alerts']}/{s['alerts_expected']}", "—", "—"),
        ("main-stream packets demuxed, share of all", _fmt(s.get("main_stream_share"), ".0%"), "—", "—"),
        ("whole machine busy in window (cores)", _fmt(s["machine_busy_cores"], ".2f"), _fmt(s.get("floor_machine_busy_cores"), ".2f"),
         _fmt(s.get("peer_machine_busy_cores"), ".2f")),
        ("  of which RTSP server (not counted above)", _fmt(s["rtsp_server_cores"], ".2f"), "—", "—"),
    ]


def print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    what = "lift cameras (e-bike)" if summary.get("hazard") == "ebike" else "cameras"
    table = Table(title=f"sharpeyes bench edge — {summary['cameras']} {what} ({summary.get('changing_cameras', 0)} of them "
                        f"changing), {summary['fps']} fps, {summary['seconds']:.0f} s, GOP {summary['gop']}, {summary['model']}, "
                        f"{summary.get('camera_server', 'python')} RTSP server, {summary.get('phases', 1)} loop phase(s), "
                        f"{summary.get('blocked_cameras', '—')} lanes blocked, main stream {summary.get('evidence_stream', 'always')}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "figure" else "right")
    for row in rows(summary):
        table.add_row(*row)
    console = Console(width=200)
    console.print(table)
    console.print(f"  the edge's own CPU in its window: {_fmt(summary.get('edge_cores'), '.2f')} cores; the stand-in "
                  f"cameras' server ({summary.get('camera_server', 'python')}): {_fmt(summary.get('rtsp_server_cores'), '.2f')} "
                  f"cores, {_fmt(summary.get('rtsp_server_cpu_per_stream_s'), '.5f')} CPU s per stream-second")
    if summary.get("machine_reference_ms") is not None:
        console.print(f"  machine reference before the run: one yolov8n 640x640 inference on one thread took "
                      f"{summary['machine_reference_ms']:.0f} ms CPU (compare runs by it)")
    if summary.get("cores_workers") is not None:
        console.print("  the edge's cores by thread: " + ", ".join(
            f"{kind.replace('_', ' ')} {_fmt(summary.get(f'cores_{kind}'), '.2f')}" for kind in THREAD_KINDS))
    if summary.get("camera_server_fallback"):
        console.print(f"  [bold red]camera server fell back to python:[/] {summary['camera_server_fallback']}")
    for name, met in summary["targets"].items():
        console.print(f"  target {name.replace('_', ' ')}: {'—' if met is None else ('met' if met else '[bold red]MISSED[/]')}")
    if summary.get("peer_note"):
        console.print(f"  peer: {summary['peer_note']}")
    if summary.get("edge_vs_peer_fitted") is not None:
        console.print(f"  against the peer given the edge's own fitted graph: {summary['edge_vs_peer_fitted']:.2f}x")


def markdown_table(summary: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(summary)]
    return "\n".join(lines)


def _verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "[bold red]MISSED[/]")


def print_repeat_table(summary: dict[str, Any]) -> None:
    """``--repeat N``: each figure's min, median and max; targets judged on the worst run."""
    from rich.console import Console
    from rich.table import Table

    n = summary["repeat"]
    table = Table(title=f"sharpeyes bench edge — {summary.get('cameras')} cameras, {summary.get('hazard', 'fire_lane')}, "
                        f"{n} runs, {summary.get('camera_server', 'python')} RTSP server, "
                        f"{summary.get('phases', 1)} loop phase(s), {summary.get('blocked_cameras', '—')} lanes blocked, "
                        f"main stream {summary.get('evidence_stream', 'always')}")
    for column in ("figure", "min", "median", "max"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key, spread in summary["figures"].items():
        if spread is None:
            table.add_row(key, "—", "—", "—")
        else:
            table.add_row(key, *(f"{spread[k]:.4g}" for k in ("min", "median", "max")))
    console = Console(width=200)
    console.print(table)
    console.print(f"  every camera sustained in every run: {'yes' if summary['all_sustained_every_run'] else 'NO'} "
                  f"(worst run: {summary['worst_run']})")
    for name, met in summary["targets"].items():
        console.print(f"  target {name.replace('_', ' ')} (worst of {n} runs): {_verdict(met)}")


def print_capacity(found: dict[str, Any]) -> None:
    """``--find-capacity``: the counts tried, the capacity, and the full comparison at it."""
    from rich.console import Console

    console = Console(width=200)
    tried = ", ".join(f"{t['cameras']} {'held' if t['held'] else 'failed'}" for t in found["tried"])
    more = " (the search's limit held: the box may take more)" if found["limit_reached"] else ""
    console.print(f"capacity ({found['hazard']}, every camera >= 95 % on time in each of {found['repeat']} run(s)): "
                  f"[bold]{found['capacity']}[/] cameras{more}; tried {tried}")
    at = found.get("at_capacity")
    if at is None:
        return
    if "repeat" in at:
        print_repeat_table(at)
    else:
        print_table(at)
