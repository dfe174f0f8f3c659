"""The configuration message central sends one edge (``cmd/config``): that edge's own part of the site.

It carries the edge's cameras, zones, thresholds, model names and settings, and nothing else: no
users, no grid people or their phones, no other edge, no broker or central secret. Camera URLs
travel as written in the site file, so credentials stay ``${VAR}`` references that the edge fills
in from its own environment when it opens the stream (``CameraConfig.stream_url``).

``edge_config_message`` is the one producer: the site file loader (``edge run``, SIGHUP) and
central's pushes (zones, whole-edge configuration) all go through it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from broker.cameraconfig import EdgeConfig
from broker.configbase import ConfigError, Id, describe_errors
from broker.siteconfig import SiteConfig

EDGE_CONFIG_SCHEMA = 1


def config_version(edge: EdgeConfig) -> str:
    """A short content hash: the same configuration always has the same version."""
    canonical = json.dumps(edge.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


class EdgeConfigMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(1, description="bumped on an incompatible change (EDGE_CONFIG_SCHEMA)")
    site: Id
    version: str = Field(description="content hash of edge (config_version)")
    edge: EdgeConfig


def edge_config_message(site: SiteConfig, edge_id: str) -> EdgeConfigMessage:
    """The message for one edge of a validated site (KeyError naming the known edges if absent)."""
    edge = site.edge(edge_id)
    return EdgeConfigMessage(site=site.site, version=config_version(edge), edge=edge)


def parse_edge_config_message(data: Any, source: str = "cmd/config") -> EdgeConfigMessage:
    """Validate a received message; ConfigError names each bad key, as for the site file."""
    try:
        message = EdgeConfigMessage.model_validate(data)
    except ValidationError as exc:
        raise describe_errors(source, exc) from None
    if message.version != config_version(message.edge):
        raise ConfigError(source, [f"version: {message.version} does not match the configuration's content "
                                   f"({config_version(message.edge)}); the message was altered or truncated"])
    return message
