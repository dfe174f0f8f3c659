"""What the demo tells the person who started it."""

from __future__ import annotations

from sharpeyes.demo.layout import DemoLayout, DemoPorts, demo_credentials


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def announce(ports: DemoPorts, layout: DemoLayout) -> None:
    """The console's address, the logins and the ports, once everything is up."""
    base = f"http://127.0.0.1:{ports.http}"
    lines = ["", f"  sharpeyes demo is running — console: {base}/", "  logins (demo passwords from configs/demo.yaml):"]
    try:
        lines += [f"    {c.username:<12} {c.password:<22} ({c.role})" for c in demo_credentials(layout.root / layout.config)]
    except Exception as exc:  # noqa: BLE001 - the demo still runs; the console shows the error too
        lines.append(f"    (could not read users: {exc})")
    lines += [f"  MQTT 127.0.0.1:{ports.mqtt} (protocol {ports.protocol}), RTSP 127.0.0.1:{ports.rtsp}",
              "  Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)
