"""Desired and reported configuration state, the part edge and central share (pure).

**Desired**: central numbers every configuration it stores for an edge (its configuration history,
``edge_config_changes``) and sends the newest as a ``config`` command that the broker keeps
**retained** on the edge's own ``.../cmd/config`` topic. The command's args carry the number beside
the configuration message (``args.desired_version``); an older edge reads only
``args.edge_config`` and ignores it. The broker hands the retained command to the edge every time it
subscribes, so an edge that was away, or restarted with an old site file, gets the newest version
within a second of connecting, whether or not central is up.

**Reported**: the edge's heartbeat carries ``config`` (``broker.payloads.ConfigReport``): the
number and content hash of what it runs and since when, and the newest configuration it refused with
the problems. An edge sends it only once a central has sent it a numbered configuration (an older
central does not know the field and would refuse the whole status).

Why retained rather than the edge asking on connect: see docs/edge.md, "Desired and reported state".
"""

from __future__ import annotations

import re
from typing import Any

# The key of a config command's args that carries central's number of the configuration.
DESIRED_VERSION_ARG = "desired_version"
# EdgeStatus.version is "<package>+config.<content hash>" (edge/node.py).
_CONFIG_HASH = re.compile(r"\+config\.([0-9a-f]{12})$")


def desired_version_of(args: dict[str, Any]) -> int | None:
    """The number central gave the configuration in a config command's args (None: an older central,
    or a malformed value, which is never a reason to refuse the configuration itself)."""
    value = args.get(DESIRED_VERSION_ARG)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def config_hash_of(status_version: str | None) -> str | None:
    """The content hash of the configuration an edge runs, from its status's ``version``: every
    edge reports it, including those too old to send ``heartbeat.config``."""
    match = _CONFIG_HASH.search(status_version or "")
    return match.group(1) if match else None


def needs_apply(running_hash: str, offered_hash: str) -> bool:
    """Whether an offered configuration changes anything: the same content is never applied twice
    (a retained configuration comes again on every reconnect)."""
    return running_hash != offered_hash
