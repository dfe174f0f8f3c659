"""CPU time and memory of one process from /proc, without psutil.

The benchmark measures each contestant (edge, floor, peer) in its own process, so that the RTSP
server's and the broker's CPU never count against it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuSample:
    user_s: float
    system_s: float

    @property
    def total_s(self) -> float:
        return self.user_s + self.system_s


def parse_stat(text: str) -> CpuSample:
    """utime and stime (fields 14 and 15) of /proc/<pid>/stat; the command name may hold spaces."""
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state), so field N is fields[N - 3].
    return CpuSample(int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS)


def parse_status_kb(text: str, key: str) -> int | None:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def cpu_of(pid: int) -> CpuSample:
    return parse_stat(Path(f"/proc/{pid}/stat").read_text())


# What the edge's threads are, by the names edge.camera and edge.camera_worker give them.
THREAD_KINDS = ("workers", "detection_readers", "main_readers", "other")


def thread_kind(name: str) -> str:
    if name.startswith("worker-"):
        return "workers"
    if name.startswith("camera-"):
        return "main_readers" if name.endswith("(evidence stream)") else "detection_readers"
    return "other"


def thread_cpu_by_kind() -> dict[str, float]:
    """This process's CPU seconds by the kind of Python thread that spent them; "other" also holds
    what no Python thread names (onnxruntime's pool, the interpreter's start) and threads gone by."""
    by_kind = dict.fromkeys(THREAD_KINDS, 0.0)
    named = 0.0
    for thread in threading.enumerate():
        if thread.native_id is None:
            continue
        try:
            spent = parse_stat(Path(f"/proc/self/task/{thread.native_id}/stat").read_text()).total_s
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended since the list was taken
        kind = thread_kind(thread.name)
        if kind != "other":
            by_kind[kind] += spent
            named += spent
    by_kind["other"] = cpu_of(os.getpid()).total_s - named
    return by_kind


def rss_mb_of(pid: int) -> float | None:
    try:
        kb = parse_status_kb(Path(f"/proc/{pid}/status").read_text(), "VmRSS")
    except OSError:
        return None
    return kb / 1024 if kb is not None else None


class RssWatcher:
    """Samples a process's resident memory once a second and keeps the peak seen in a window."""

    def __init__(self, pid: int, interval_s: float = 1.0) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_mb = 0.0
        self.last_mb = 0.0
        self.measuring = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def start(self) -> RssWatcher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = rss_mb_of(self.pid)
            if rss is None:
                return
            self.last_mb = rss
            if self.measuring:
                self.peak_mb = max(self.peak_mb, rss)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(2)
        return self.peak_mb


def parse_machine_busy(text: str) -> tuple[float, float]:
    """(busy seconds, total seconds) over all cores from the ``cpu`` line of /proc/stat."""
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already counted in user; the first eight fields are the whole.
    total = sum(fields[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def machine_busy() -> tuple[float, float]:
    return parse_machine_busy(Path("/proc/stat").read_text())


def boost(pid: int) -> bool:
    """Give ``pid``'s scheduling group top CPU priority; False where that is not permitted.

    With autogroup scheduling (Linux's default for desktop and many server kernels) CPU is
    shared between sessions first and by nice value only inside one, and the bench's children
    each run in a session of their own; so on a machine shared with other work the priority
    has to be set on the group (``/proc/<pid>/autogroup``). Needs root or CAP_SYS_NICE.
    """
    try:
        Path(f"/proc/{pid}/autogroup").write_text("-20")
        return True
    except OSError:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, -20)
            return True
        except OSError:
            return False
