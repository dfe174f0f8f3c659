"""`sharpeyes edge ...`."""

from __future__ import annotations

from pathlib import Path

import typer

from broker.logsetup import setup_logging

app = typer.Typer(help="edge commands.", no_args_is_help=True)


@app.command("replay")
def replay_command(
    video: Path = typer.Argument(..., help="video file to analyse (mp4, mkv, ...)"),
    camera_config: Path = typer.Option(..., "--camera-config", help="YAML with zones:, detect_fps:, model:"),
    site: str = typer.Option("replay", help="site id written into the events"),
    edge: str = typer.Option("replay", help="edge id written into the events"),
    camera: str | None = typer.Option(None, help="camera id (default: the config file's name)"),
    evidence_dir: Path | None = typer.Option(None, "--evidence-dir", help="write evidence snapshots here"),
) -> None:
    """Run the hazard pipeline over a video file as fast as possible; one JSON event per line.

    Each line is a v1 event payload plus "t", the video time (s) when it was raised.
    Logs go to stderr. Episodes still open at the end of the video get no "end".
    """
    import json
    import re
    import sys

    from broker.configbase import ConfigError
    from broker.siteconfig import load_camera_rules

    setup_logging("INFO")
    try:
        rules = load_camera_rules(camera_config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    camera_id = camera or re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", camera_config.stem.lower())).strip("-") or "replay"
    id_problems = [f"--{name} {value!r}: use lower-case letters, digits and '-' only" for name, value in
                   (("site", site), ("edge", edge), ("camera", camera_id)) if not re.fullmatch(r"[a-z0-9-]+", value)]
    if id_problems:
        typer.echo("\n".join(id_problems), err=True)
        raise typer.Exit(2)

    from edge.replay import VideoError, replay
    from models.registry import ChecksumMismatch, ModelNotFound

    try:
        for event in replay(video, rules, site=site, edge=edge, camera=camera_id, evidence_dir=evidence_dir):
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    except (VideoError, ModelNotFound, ChecksumMismatch) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


from edge.run_command import run as _run_command  # noqa: E402  (module imports only typer at top level)

app.command("run")(_run_command)


@app.command("outbox")
def outbox_command(
    outbox: Path = typer.Option(None, "--outbox", help="the edge's outbox database (default var/edge-<id>-outbox.db)"),
    edge: str = typer.Option(None, "--edge", help="edge id, for the default outbox path"),
    dead: bool = typer.Option(False, "--dead", help="list the dead letters: messages the broker refused too often"),
    retry: str = typer.Option(None, "--retry", help="re-queue dead letters: 'all' or ids, comma-separated"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object instead of a table"),
) -> None:
    """What the edge still has to deliver, and the dead letters an operator must look at.

    Works on a running edge's outbox too: re-queued messages go out in their original order.
    """
    import json

    from edge.outbox import Outbox

    if outbox is None and edge is None:
        typer.echo("name the outbox: --outbox PATH, or --edge ID for var/edge-<id>-outbox.db", err=True)
        raise typer.Exit(2)
    path = outbox or Path("var") / f"edge-{edge}-outbox.db"
    if not path.is_file():
        typer.echo(f"{path}: no outbox here (the edge writes it at its first start; see --outbox)", err=True)
        raise typer.Exit(2)
    store = Outbox(path)
    try:
        requeued = None
        if retry is not None:
            try:
                ids = None if retry.strip() == "all" else [int(part) for part in retry.split(",") if part.strip()]
            except ValueError:
                typer.echo(f"--retry {retry!r}: give 'all' or message ids such as 12,13", err=True)
                raise typer.Exit(2) from None
            requeued = store.requeue(ids)
        messages, size = store.depth()
        letters = store.dead_letters()
    finally:
        store.close()
    report = {"outbox": str(path), "pending_messages": messages, "pending_bytes": size,
              "dead_letters": len(letters), "requeued": requeued}
    if dead or as_json:
        report["dead"] = [{"id": d.id, "topic": d.topic, "kind": d.kind, "bytes": d.size, "attempts": d.attempts,
                           "reason": d.reason} for d in letters] if dead else None
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    if requeued is not None:
        typer.echo(f"re-queued {requeued} dead letter(s)")
    typer.echo(f"{path}: {messages} message(s), {size} bytes waiting; {len(letters)} dead letter(s)")
    if dead:
        for d in letters:
            typer.echo(f"  #{d.id} {d.kind} {d.topic} ({d.size} bytes, refused {d.attempts}x): {d.reason}")
