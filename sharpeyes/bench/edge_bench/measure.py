"""Run one contestant in its own process over the measured window, then read its samples back.

Every contestant (the edge, the floor, the peer) is a child process that writes a ``.ready`` file
once each camera has sampled, and its per-sample records and counter snapshots when it stops; its
CPU and RSS are read from /proc meanwhile.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sharpeyes.bench import stats
from sharpeyes.bench.edge_bench.options import BenchError, BenchOptions
from sharpeyes.bench.edge_bench.result import Contestant
from sharpeyes.bench.procstat import RssWatcher, boost, cpu_of, machine_busy


def _spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    logfile = open(log_path, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.DEVNULL, stdout=logfile,
                                stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, start_new_session=True)
    finally:
        logfile.close()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _cpu_total(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_of(pid).total_s
        except OSError:
            pass
    return total


def _counters_at(log_entries: list[dict[str, Any]], t: float) -> dict[str, Any]:
    """The counter snapshot logged closest to monotonic time ``t``."""
    return min(log_entries, key=lambda entry: abs(entry["t"] - t)) if log_entries else {"cameras": {}}


def measure(name: str, module: str, args: list[str], *, cameras: int, opts: BenchOptions, workdir: Path,
            server_pids: list[int] | None = None,
            env: dict[str, str] | None = None) -> tuple[Contestant, dict[str, Any], tuple[float, float]]:
    """Run one contestant: wait until every camera has sampled, settle, measure ``seconds``, stop."""
    out = workdir / f"{name}.json"
    ready = out.with_suffix(".ready")
    log_path = workdir / f"{name}.log"
    proc = _spawn([module, *args, "--out", str(out)], log_path, env)
    if opts.boost:
        boost(proc.pid)
    rss = RssWatcher(proc.pid).start()
    contestant = Contestant(name=name, cameras=cameras)
    try:
        deadline = time.monotonic() + opts.warmup_timeout_s
        while not ready.exists():
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode} before it was ready:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                contestant.note = f"not every camera sampled within {opts.warmup_timeout_s:.0f} s of start"
                break
            time.sleep(0.2)
        time.sleep(opts.settle_s)
        server0 = _cpu_total(server_pids or [])
        busy0, _ = machine_busy()
        t0, cpu0 = time.monotonic(), cpu_of(proc.pid)
        rss.measuring = True
        time.sleep(opts.seconds)
        t1, cpu1 = time.monotonic(), cpu_of(proc.pid)
        busy1, _ = machine_busy()
        if server_pids:
            contestant.rtsp_server_cores = (_cpu_total(server_pids) - server0) / (t1 - t0)
        contestant.machine_busy_cores = (busy1 - busy0) / (t1 - t0)
        rss.measuring = False
        contestant.window_s = t1 - t0
        contestant.window = (t0, t1)
        contestant.cpu_s = cpu1.total_s - cpu0.total_s
        contestant.rss_mb = rss.peak_mb or rss.last_mb
    finally:
        rss.stop()
        # Why the child ended: the parent's stop, its own crash, or a kill after it would not stop.
        exit_reason = _exit_reason(proc.poll())
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
                exit_reason = _exit_reason(proc.returncode, "after SIGTERM")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                exit_reason = "did not stop within 20 s of SIGTERM and was killed"
    if not out.is_file():
        raise BenchError(f"{name} wrote no results: it {exit_reason}:\n{_tail(log_path)}")
    records = json.loads(out.read_text())
    if records.get("partial"):
        # Its last periodic dump: the records up to at most 10 s before it ended.
        contestant.note = f"{contestant.note + '; ' if contestant.note else ''}partial records: it {exit_reason}"
    return contestant, records, (t0, t1)


def _exit_reason(returncode: int | None, when: str = "during the run") -> str:
    if returncode is None:
        return "was still running"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name} {when}"
        except ValueError:
            return f"was killed by signal {-returncode} {when}"
    return f"exited with {returncode} {when}"


def summarise(contestant: Contestant, records: dict[str, Any], window: tuple[float, float], fps: float) -> Contestant:
    """Fill cadence, per-sample times and counters from a contestant's records over ``window``."""
    start_counters = _counters_at(records.get("counters", []), window[0])
    end_counters = _counters_at(records.get("counters", []), window[1])
    shares: list[float] = []
    sample_ms: list[float] = []
    infer_s = 0.0
    n_samples = 0
    decode_s = 0.0
    for camera, rows in records.get("samples", {}).items():
        contestant.detections += sum(1 for r in rows if window[0] <= r[0] < window[1] and (len(r) < 5 or r[4]))
        samples = [stats.Sample(frame_t=r[0], started=r[1], ended=r[2], infer_s=r[3]) for r in rows]
        kept = stats.cadence(samples, window, fps)
        shares.append(kept.share)
        contestant.cameras_sustained += int(kept.sustained)
        in_window = [s for s in samples if window[0] <= s.frame_t < window[1]]
        n_samples += len(in_window)
        infer_s += sum(s.infer_s for s in in_window)
        sample_ms += [(s.ended - s.started) * 1000 for s in in_window]
        a = start_counters.get("cameras", {}).get(camera)
        b = end_counters.get("cameras", {}).get(camera)
        if a and b:
            decode_s += b["decode_s"] - a["decode_s"]
            contestant.reconnects += b.get("reconnects", 0) - a.get("reconnects", 0)
            contestant.main_stream_packets += b.get("main_packets", 0) - a.get("main_packets", 0)
    before, after = start_counters.get("threads"), end_counters.get("threads")
    if before and after and window[1] > window[0]:
        contestant.thread_cores = {kind: (after[kind] - before[kind]) / (window[1] - window[0]) for kind in after}
    contestant.samples = n_samples
    contestant.on_time_share_min = min(shares) if shares else None
    if n_samples:
        contestant.infer_ms_per_sample = infer_s / n_samples * 1000
        contestant.decode_ms_per_sample = decode_s / n_samples * 1000 if start_counters.get("cameras") else None
        contestant.sample_ms_p95 = stats.percentile(sample_ms, 95)
    return contestant
