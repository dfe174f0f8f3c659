"""`sharpeyes bench inventory`: the inventory at city scale. A generated catalogue (30,000 cameras over
1,000 edges by default) is imported as `central inventory import` does it (validation, one version
per edge with its config command, the index); the camera list answers searches through the real
API; a change is pushed to every edge and its commands published to a real Mosquitto. Each figure
has a baseline measured in the same run (a plain INSERT of the same rows, the search's bare SQL,
paho publishing the same payloads), so the figures are ratios too. It measures, it never asserts."""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

IMPORT_TARGET_S, SEARCH_TARGET_MS = 60.0, 200.0


@dataclass
class Figures:
    cameras: int
    edges: int
    database: str
    import_s: float
    plain_insert_s: float
    versions: int
    startup_s: float
    queries: int
    search_p50_ms: float
    search_p95_ms: float
    bare_sql_p50_ms: float
    push_edges: int
    push_store_s: float
    publish_s: float | None
    plain_publish_s: float | None

    @property
    def import_ratio(self) -> float:
        return self.import_s / self.plain_insert_s if self.plain_insert_s else 0.0


def catalogue(cameras: int, edges: int, cells: int) -> str:
    lines = ["channel id,name,grid cell,url,longitude,latitude,edge"]
    for i in range(cameras):
        edge, cell = i % edges, i % cells
        lines.append(f"{11010100001320000000 + i},小区{edge}号 {i}号摄像机,g{cell},"
                     f"rtsp://viewer:${{CAM_PW_{edge}}}@10.{edge // 250}.{edge % 250}.{i % 200 + 1}/ch1,"
                     f"{116.3 + i * 1e-5:.6f},{39.9 + i * 1e-5:.6f},edge-{edge:04d}")
    return "\n".join(lines) + "\n"


def _site(cells: int) -> Any:
    from broker.siteconfig import SiteConfig

    return SiteConfig.model_validate({
        "site": "city", "broker": {"host": "127.0.0.1", "port": 1883},
        "grid": [{"code": f"g{c}", "name": f"Grid {c}"} for c in range(cells)],
        "users": [{"username": "admin", "role": "admin", "password": "bench-admin-password"}]})


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def _plain_insert(engine: Any, text: str) -> float:
    """The floor: the catalogue's rows INSERTed into a bare table, no validation, no versions."""
    import csv
    import io

    from sqlalchemy import Column, Float, MetaData, String, Table, insert

    meta = MetaData()
    table = Table("bench_plain_cameras", meta, Column("id", String(20), primary_key=True), Column("name", String(200)),
                  Column("grid_cell", String(64)), Column("url", String(500)), Column("lon", Float),
                  Column("lat", Float), Column("edge", String(64)))
    meta.create_all(engine)
    rows = list(csv.reader(io.StringIO(text)))[1:]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(table), [dict(id=r[0], name=r[1], grid_cell=r[2], url=r[3], lon=float(r[4]), lat=float(r[5]),
                                          edge=r[6]) for r in rows])
    elapsed = time.perf_counter() - started
    meta.drop_all(engine)
    return elapsed


class _Paho:
    """publish_many over a real broker, waiting for each QoS 1 acknowledgement."""

    def __init__(self, port: int) -> None:
        from paho.mqtt import client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{random.randrange(1 << 30)}")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish_many(self, messages: Sequence[Any]) -> list[bool]:
        infos = [self.client.publish(m.topic, m.payload, m.qos, m.retain) for m in messages]
        for info in infos:
            info.wait_for_publish(10)
        return [info.is_published() for info in infos]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def measure(cameras: int = 30_000, edges: int = 1_000, queries: int = 200, database_url: str | None = None,
            mqtt: bool = True, progress: Callable[[str], None] = lambda _t: None) -> Figures:
    from fastapi.testclient import TestClient
    from sqlalchemy import select, update

    from broker.cameraconfig import EdgeConfig
    from central.fleet import inventory
    from central.fleet.inventory_import import apply, prepare
    from central.server import build_central, seed_grid
    from central.store.config_tables import EdgeConfigChange
    from central.store.db import make_engine, make_session_factory
    from central.store.inventory_tables import InventoryCamera
    from central.store.migrate import upgrade
    from central.store.tables import CommandRow, utcnow
    from central.workflow.notify import send_pending_commands

    work = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    url = database_url or f"sqlite:///{work / 'central.db'}"
    cells = max(1, min(200, cameras // 30))
    site = _site(cells)
    text = catalogue(cameras, edges, cells)
    (work / "catalogue.csv").write_text(text, encoding="utf-8")
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions() as session:
        seed_grid(session, site)
    progress(f"importing {cameras} cameras over {edges} edges into {engine.url.render_as_string(hide_password=True)}")
    started = time.perf_counter()
    with sessions() as session:
        result, _ = prepare(session, work / "catalogue.csv", site="city")
        if result.problems:
            raise RuntimeError("\n".join(result.problems[:10]))
        apply(session, result, reason="bench", at=utcnow())
    import_s = time.perf_counter() - started
    plain_s = _plain_insert(engine, text)
    with sessions() as session:
        session.execute(update(CommandRow).values(published=True))  # the import's commands: not what is timed below
        session.commit()

    progress("starting central on that database")
    started = time.perf_counter()
    central = build_central(site, url, work / "evidence", work / "var", ingest=False)
    startup_s = time.perf_counter() - started
    rng = random.Random(7)
    terms = [rng.choice([f"{rng.randrange(cameras)}号", f"小区{rng.randrange(edges)}号",
                         str(11010100001320000000 + rng.randrange(cameras))[:16]]) for _ in range(queries)]
    timings, bare = [], []
    try:
        with TestClient(central.app) as client:
            token = client.post("/api/v1/auth/token", data={"username": "admin", "password": "bench-admin-password"})
            admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for term in terms:
                t0 = time.perf_counter()
                res = client.get("/api/v1/cameras", headers=admin, params={"q": term, "limit": 50})
                timings.append((time.perf_counter() - t0) * 1000)
                assert res.status_code == 200, res.text
            with sessions() as session:
                for term in terms:
                    t0 = time.perf_counter()
                    session.scalars(select(InventoryCamera).where(InventoryCamera.name.like(f"%{term}%"))
                                    .order_by(InventoryCamera.id).limit(50)).all()
                    bare.append((time.perf_counter() - t0) * 1000)
    finally:
        central.close()

    progress(f"pushing a change to {edges} edges")
    with sessions() as session:
        state = inventory.current_state(session, "city")
        started = time.perf_counter()
        for edge_id, data in state.items():
            inventory.store_version(session, "city", EdgeConfig.model_validate({**data, "heartbeat_s": 30}),
                                    edge_id=edge_id, actor="bench", action="push", at=utcnow(), reason="bench")
        session.commit()
        store_s = time.perf_counter() - started
        payloads = [(r.site, r.edge, json.dumps(r.args).encode()) for r in session.scalars(
            select(CommandRow).where(CommandRow.published.is_(False)))]
        versions = session.query(EdgeConfigChange).count()
    publish_s = plain_publish_s = None
    if mqtt:
        publish_s, plain_publish_s = _publish(sessions, payloads, work, send_pending_commands)
    engine.dispose()
    return Figures(cameras, edges, engine.url.get_backend_name(), import_s, plain_s, versions, startup_s, queries,
                   _percentile(timings, 0.5), _percentile(timings, 0.95), statistics.median(bare), len(state), store_s,
                   publish_s, plain_publish_s)


def _publish(sessions: Any, payloads: list[tuple[str, str, bytes]], work: Path,
             send: Callable[..., int]) -> tuple[float | None, float | None]:
    from broker.mosquitto import MosquittoError, MosquittoProcess
    from central.workflow.outgoing import Outgoing

    try:
        broker = MosquittoProcess(data_dir=work / "mosquitto").start()
    except MosquittoError:
        return None, None
    try:
        paho = _Paho(broker.port)
        try:
            started = time.perf_counter()
            with sessions() as session:
                send(session, paho)
            publish_s = time.perf_counter() - started
            started = time.perf_counter()
            paho.publish_many([Outgoing(f"bench/{s}/{e}/cmd/config", p, 1, False) for s, e, p in payloads])
            return publish_s, time.perf_counter() - started
        finally:
            paho.close()
    finally:
        broker.stop()


def as_json(figures: Figures) -> str:
    return json.dumps({**asdict(figures), "import_ratio": figures.import_ratio}, indent=2)
