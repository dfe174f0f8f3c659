"""`sharpeyes edge ...`."""

from __future__ import annotations

from pathlib import Path

import typer

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
    import logging
    import re
    import sys

    from broker.siteconfig import ConfigError, load_camera_rules

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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
