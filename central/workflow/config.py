"""Central's own configuration (``configs/workflow.yaml``): how incidents move through the centre.

Deadlines, dispatch rules, auto-register thresholds, units, the red/yellow/blue index formula,
webhooks and Open311 services. Validated once at start-up; errors name the file, the key and the fix.
Without a file, every hazard is registered and dispatched at once (the vertical slice's behaviour).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from broker.configbase import ConfigError
from broker.payloads import HazardKind
from broker.siteconfig import SiteConfig, _load

STAGES = ("dispatch", "accept", "handle", "check")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: float | int | str) -> float:
    """Seconds from 90, "90s", "30m", "4h" or "2d"."""
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration; write e.g. 90, 30m, 4h or 2d")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Deadlines(_Strict):
    """Seconds allowed per stage: dispatch (registered → dispatched), accept, handle, check."""

    dispatch: float = 3600.0
    accept: float = 3600.0
    handle: float = 24 * 3600.0
    check: float = 4 * 3600.0

    @field_validator("dispatch", "accept", "handle", "check", mode="before")
    @classmethod
    def _duration(cls, value: float | int | str) -> float:
        return parse_duration(value)

    def for_stage(self, stage: str) -> float:
        return float(getattr(self, stage))


class HazardRule(_Strict):
    auto_register_score: float | None = Field(
        0.0, ge=0.0, le=1.0, description="register without triage at or above this score; null: always triage"
    )
    unit_kind: str | None = Field(None, description="dispatch to the unit of this kind covering the cell")
    deadlines: Deadlines = Field(default_factory=Deadlines)


class UnitConfig(_Strict):
    id: str = Field(pattern=r"^[a-z0-9-]+$", max_length=64)
    name: str
    kind: str = Field(description="e.g. property, department")
    grid: list[str] = Field(default_factory=list, description="grid nodes whose subtree this unit serves")


class IndexFormula(_Strict):
    """Monthly index per grid node: score = 100 × Σ wᵢ·rateᵢ / Σ wᵢ over closure, on-time and (1 − rework).

    blue when score ≥ yellow_below, yellow when ≥ red_below, red otherwise; a node with no
    incidents in the month is blue with score 100.
    """

    closure_weight: float = Field(0.4, ge=0)
    on_time_weight: float = Field(0.4, ge=0)
    no_rework_weight: float = Field(0.2, ge=0)
    yellow_below: float = Field(85.0, ge=0, le=100)
    red_below: float = Field(70.0, ge=0, le=100)

    @model_validator(mode="after")
    def _sane(self) -> IndexFormula:
        if self.closure_weight + self.on_time_weight + self.no_rework_weight <= 0:
            raise ValueError("at least one weight must be positive")
        if self.red_below > self.yellow_below:
            raise ValueError("red_below must not exceed yellow_below")
        return self


class WebhookConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    url: str = Field(pattern=r"^https?://")
    format: Literal["json", "wecom", "dingtalk"] = "json"
    secret_env: str | None = Field(None, description="environment variable with the HMAC secret")
    secret: str | None = Field(None, description="for tests and demos only; production uses secret_env")
    events: list[str] = Field(
        default_factory=lambda: ["dispatched", "escalated", "checking", "rework", "returned"],
        description="which notifications go to this hook",
    )
    max_attempts: int = Field(6, ge=1, le=50)
    backoff_s: float = Field(2.0, gt=0, description="first retry delay; doubles each attempt")
    timeout_s: float = Field(5.0, gt=0)

    def signing_secret(self) -> str | None:
        if self.secret_env:
            return os.environ.get(self.secret_env)
        return self.secret


class Open311Service(_Strict):
    service_code: str = Field(pattern=r"^[a-z0-9_-]+$")
    service_name: str
    description: str = ""
    hazard: str | None = Field(None, description="treated like this hazard (deadlines, dispatch rule)")
    group: str = "城市管理"
    keywords: str = ""


class Open311Config(_Strict):
    enabled: bool = Field(True, description="accept requests at /open311/v2 (needs a key outside --demo)")
    api_key_env: str | None = Field(None, description="environment variable with the key POST must carry")
    api_key: str | None = Field(None, description="for demos only")
    services: list[Open311Service] = Field(
        default_factory=lambda: [
            Open311Service(service_code="fire_lane_blocked", service_name="消防通道占用 Fire lane blocked",
                           hazard="fire_lane_blocked"),
            Open311Service(service_code="ebike_indoor", service_name="电动车进楼 E-bike indoors", hazard="ebike_indoor"),
            Open311Service(service_code="other", service_name="其他 Other"),
        ]
    )
    rate_per_minute: int = Field(30, ge=1, description="requests per minute per key and per address; more get 429")

    def required_key(self) -> str | None:
        if self.api_key_env:
            return os.environ.get(self.api_key_env)
        return self.api_key


class EvidenceRetention(_Strict):
    """How long evidence is kept after its incident closed, by outcome (GB/T 35273-2020 6.1:
    no longer than the purpose needs). Durations as 90, 30m, 4h or 7d."""

    dismissed: float = Field(7 * 86400.0, description="false alarms, silenced and duplicate incidents")
    closed: float = Field(180 * 86400.0, description="incidents handled and closed")

    @field_validator("dismissed", "closed", mode="before")
    @classmethod
    def _duration(cls, value: float | int | str) -> float:
        return parse_duration(value)


class RetentionConfig(_Strict):
    """What the purge (central/evidence/retention.py) deletes, and how often it looks."""

    evidence: EvidenceRetention = Field(default_factory=EvidenceRetention)
    hazards: dict[str, EvidenceRetention] = Field(default_factory=dict, description="per hazard, replacing evidence:")
    unattached_uploads: float = Field(2 * 86400.0, description="worker photos never attached to an incident")
    login_attempts: float = Field(3 * 365 * 86400.0, description="the record of logins (at least 3 years)")
    interval_s: float = Field(3600.0, gt=0, description="how often the purge runs (under the deadlines lease)")
    enabled: bool = True

    @field_validator("unattached_uploads", "login_attempts", mode="before")
    @classmethod
    def _duration(cls, value: float | int | str) -> float:
        return parse_duration(value)

    @field_validator("login_attempts")
    @classmethod
    def _records_kept_three_years(cls, seconds: float) -> float:
        if seconds < 3 * 365 * 86400:
            raise ValueError("access records are kept at least 3 years (PIPL art. 51 review, GB/T 35273 11.6); use "
                             "1095d or more")
        return seconds

    def for_hazard(self, hazard: str) -> EvidenceRetention:
        return self.hazards.get(hazard, self.evidence)


class WorkflowConfig(_Strict):
    defaults: HazardRule = Field(default_factory=HazardRule)
    hazards: dict[str, HazardRule] = Field(default_factory=dict)
    auto_dispatch: bool = Field(True, description="dispatch by rule as soon as an incident is registered")
    merge_window_s: float = Field(3600.0, ge=0, description="a new episode within this of the last merges into it")
    units: list[UnitConfig] = Field(default_factory=list)
    index: IndexFormula = Field(default_factory=IndexFormula)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    open311: Open311Config = Field(default_factory=Open311Config)
    scheduler_interval_s: float = Field(15.0, gt=0)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    @field_validator("merge_window_s", mode="before")
    @classmethod
    def _window(cls, value: float | int | str) -> float:
        return 0.0 if value in (0, "0") else parse_duration(value)

    @field_validator("hazards")
    @classmethod
    def _known_hazards(cls, hazards: dict[str, HazardRule]) -> dict[str, HazardRule]:
        known = {h.value for h in HazardKind}
        for name in hazards:
            if name not in known:
                raise ValueError(f"unknown hazard {name!r}; use one of {', '.join(sorted(known))}")
        return hazards

    def rule(self, hazard: str) -> HazardRule:
        return self.hazards.get(hazard, self.defaults)

    def unit(self, unit_id: str) -> UnitConfig | None:
        return next((u for u in self.units if u.id == unit_id), None)

    def check_against(self, site: SiteConfig, path: str = "workflow") -> None:
        """References to grid nodes must resolve in the site configuration."""
        codes = {cell.code for cell in site.grid}
        problems = []
        for i, unit in enumerate(self.units):
            for code in unit.grid:
                if code not in codes:
                    problems.append(f"units[{i}].grid: {code!r} is not a grid cell of site {site.site} (fix: use a code under grid:)")
        unit_ids = {u.id for u in self.units}
        for i, user in enumerate(site.users):
            # Without a workflow file there are no units at all; a site file naming one is then
            # meant for a workflow file given elsewhere and is left alone.
            if user.unit is not None and unit_ids and user.unit not in unit_ids:
                problems.append(f"site users[{i}].unit: {user.unit!r} is not a unit here (fix: add it under units:)")
            for code in user.grid:
                if code not in codes:
                    problems.append(f"site users[{i}].grid: {code!r} is not a grid cell (fix: use a code under grid:)")
        if problems:
            raise ConfigError(path, problems)


def load_workflow_config(path: Path | str | None) -> WorkflowConfig:
    if path is None:
        return WorkflowConfig()
    return _load(path, WorkflowConfig)
