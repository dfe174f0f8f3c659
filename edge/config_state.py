"""What this edge reports of its configuration in the heartbeat (``broker.payloads.ConfigReport``):
the version it applied and since when, or the newest one it refused and why (broker/desiredstate.py).

Kept in the outbox's settings, so that an edge restarted with the same configuration still knows
central's number for it; restarted with another one (an old site file), it reports the number as
unknown until central's retained configuration arrives, which is the truth: it runs something
central never numbered."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from broker.payloads import ConfigApplied, ConfigRefused, ConfigReport
from edge.outbox import Outbox

# Outbox settings are integers: the 12-hex-digit content hash fits in 48 bits, times are unix seconds.
_HASH, _NUMBER, _SINCE, _REPORTING = "config.hash", "config.number", "config.since", "config.reporting"
MAX_PROBLEMS = 50


def _now() -> datetime:
    return datetime.now(UTC)


class ConfigState:
    def __init__(self, outbox: Outbox, running_hash: str, on_change: Callable[[], None] | None = None) -> None:
        self._outbox = outbox
        self._lock = threading.Lock()
        self.on_change = on_change
        # Only a central that numbers configurations reads the report; an older one would refuse it.
        self.reporting = bool(outbox.get_setting(_REPORTING))
        stored_hash, number, since = (outbox.get_setting(name) for name in (_HASH, _NUMBER, _SINCE))
        same = stored_hash is not None and f"{stored_hash:012x}" == running_hash
        self._applied = ConfigApplied(version=number if same and number else None, hash=running_hash,
                                      since=datetime.fromtimestamp(since, UTC) if same and since else _now())
        self._refused: ConfigRefused | None = None
        self._offered: tuple[str, int] | None = None  # (hash, number) of the configuration being applied
        self._answered: str | None = None  # the config command last answered (a retained one comes again)
        self._store()

    @property
    def applied_hash(self) -> str:
        return self._applied.hash

    def report(self) -> ConfigReport | None:
        with self._lock:
            return ConfigReport(applied=self._applied, refused=self._refused) if self.reporting else None

    def offered(self, config_hash: str, number: int | None) -> None:
        """Central offers CONFIG_HASH as its version NUMBER (None: an older central's command)."""
        with self._lock:
            if number is None:
                return
            self._offered = (config_hash, number)
            if not self.reporting:
                self.reporting = True
                self._outbox.set_setting(_REPORTING, 1)
        if config_hash == self._applied.hash and self._applied.version != number:
            self._set_applied(config_hash, number, self._applied.since)  # already running it: only its number is new

    def applied(self, config_hash: str) -> None:
        """CONFIG_HASH now runs (from central, or the site file on SIGHUP)."""
        with self._lock:
            offered = self._offered
            number = offered[1] if offered is not None and offered[0] == config_hash else None
            if config_hash == self._applied.hash:
                number, since = number or self._applied.version, self._applied.since
            else:
                since = _now()
            refused = self._refused
            # A refusal stays reported until what runs is that configuration or a later one.
            if refused is not None and (refused.hash in (None, config_hash)
                                        or (number is not None and refused.version is not None
                                            and number >= refused.version)):
                self._refused = None
        self._set_applied(config_hash, number, since)

    def refused(self, config_hash: str | None, number: int | None, problems: list[str]) -> None:
        with self._lock:
            self._refused = ConfigRefused(version=number, hash=config_hash,
                                          problems=[p[:1000] for p in problems[:MAX_PROBLEMS]] or ["refused"],
                                          at=_now())
        self._changed()

    def answered(self, command_id: str) -> bool:
        """Record that COMMAND_ID was answered; False when it already was (nothing to say again)."""
        with self._lock:
            first = self._answered != command_id
            self._answered = command_id
        return first

    def _set_applied(self, config_hash: str, number: int | None, since: datetime) -> None:
        with self._lock:
            self._applied = ConfigApplied(version=number, hash=config_hash, since=since)
            self._store()
        self._changed()

    def _store(self) -> None:
        applied = self._applied
        self._outbox.set_setting(_HASH, int(applied.hash, 16))
        self._outbox.set_setting(_NUMBER, applied.version or 0)
        self._outbox.set_setting(_SINCE, int(applied.since.timestamp()))

    def _changed(self) -> None:
        if self.on_change is not None and self.reporting:
            self.on_change()
