"""An edge's drift, desired against reported configuration (pure: no database, no clock).

Desired is the edge's newest configuration version (its number, when it was stored, its content
hash); reported is what the edge's heartbeat says it applied, or refused (broker/desiredstate.py),
and for an edge too old to say so, the content hash in its status's ``version``. Content decides
where both hashes are known: a restore that numbers an old configuration anew, or a site file that
happens to hold the desired one, is in sync whatever the numbers say."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.payloads import ConfigReport


@dataclass(frozen=True, slots=True)
class Desired:
    version: int | None  # None: no version on record, central runs the site file's configuration
    at: datetime | None  # when that version was stored
    hash: str | None = None  # content hash; the caller may leave it out where the numbers decide


@dataclass(frozen=True, slots=True)
class Reported:
    state: str | None = None  # online | offline; None: never heard of
    last_heartbeat_at: datetime | None = None
    version: int | None = None
    hash: str | None = None
    since: datetime | None = None
    refused_version: int | None = None
    refused_hash: str | None = None
    refused_problems: tuple[str, ...] = field(default=())
    refused_at: datetime | None = None


def hash_needed(desired_version: int | None, reported: Reported) -> bool:
    """Whether comparing needs the desired content hash (costly at central: the configuration is
    validated to compute it): not when the edge reports applying exactly the desired number."""
    return not (reported.version is not None and reported.version == desired_version)


def in_sync(desired: Desired, reported: Reported) -> bool:
    if desired.hash is not None and reported.hash is not None:
        return desired.hash == reported.hash
    if desired.version is not None and reported.version is not None:
        return desired.version == reported.version
    return False  # nothing to compare with: never reported, or an unknown configuration


def drift_since(desired: Desired, reported: Reported, first_unapplied_at: datetime | None) -> datetime | None:
    """Since when the edge lacks the desired configuration: the storing of the first version after
    the one it applied (FIRST_UNAPPLIED_AT), else of the desired one; where central has no version on
    record, since the edge began running what it runs."""
    if in_sync(desired, reported):
        return None
    behind = desired.version is not None and reported.version is not None and reported.version < desired.version
    if behind and first_unapplied_at is not None:
        return first_unapplied_at
    return desired.at or reported.since or reported.last_heartbeat_at


def _refusal_is_current(desired: Desired, reported: Reported) -> bool:
    if not reported.refused_problems:
        return False
    if desired.version is not None and reported.refused_version is not None:
        return reported.refused_version >= desired.version
    if desired.hash is not None and reported.refused_hash is not None:
        return reported.refused_hash == desired.hash
    return desired.at is None or reported.refused_at is None or reported.refused_at >= desired.at


def why(desired: Desired, reported: Reported) -> list[str]:
    """The reasons for a drift, in words; the edge's own problems first where it refused."""
    if in_sync(desired, reported):
        return []
    if _refusal_is_current(desired, reported):
        return list(reported.refused_problems)
    wanted = f"version {desired.version}" if desired.version is not None else "the site file's configuration"
    if reported.state is None:
        return [f"no status from this edge yet: it gets {wanted} when it connects"]
    if reported.state == "offline":
        return [f"edge offline: the broker hands it {wanted} when it reconnects"]
    if reported.version is None and reported.hash is not None and desired.version is not None:
        return [f"the edge runs a configuration central did not number (content {reported.hash}), "
                f"not {wanted}: an old site file, or an edge too old to report versions"]
    return [f"waiting for the edge to apply {wanted}"]


def drift_row(site: str, edge: str, desired: Desired, reported: Reported,
              first_unapplied_at: datetime | None = None) -> dict[str, Any]:
    """One edge's line of GET /edge-drift."""
    return {"edge": edge, "site": site, "desired_version": desired.version, "applied_version": reported.version,
            "applied_at": reported.since, "in_sync": in_sync(desired, reported),
            "drift_since": drift_since(desired, reported, first_unapplied_at),
            "problems": why(desired, reported), "last_heartbeat_at": reported.last_heartbeat_at}


def report_values(report: ConfigReport, received_at: datetime) -> dict[str, Any]:
    """The columns of ``edge_config_reports`` for one heartbeat's report."""
    refused = report.refused
    return {"applied_version": report.applied.version, "applied_hash": report.applied.hash,
            "applied_since": report.applied.since, "refused_version": refused.version if refused else None,
            "refused_hash": refused.hash if refused else None,
            "refused_problems": list(refused.problems) if refused else None,
            "refused_at": refused.at if refused else None, "reported_at": received_at}
