"""Parameter types shared by the routes, bounded where they are parsed so that no value a client can
send overflows the database's integers, the date arithmetic or bcrypt (each was a 500)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BeforeValidator, Field

# Integer columns are 64-bit (SQLite, PostgreSQL BIGINT): a larger id raised OverflowError. Ids stay
# within JavaScript's safe integers (the console's), which is also a bound every JSON tool reads
# exactly: 2**63 - 1 is no double, and checkers comparing as doubles took 2**63 + 191 for it.
MAX_ID = 2**53 - 1

IncidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="an incident's id")]
SuppressionId = Annotated[int, Path(ge=1, le=MAX_ID, description="a silence's id")]
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="rows to skip")]
# A configuration version of an edge: 1, 2, ...
Version = Annotated[int, Path(ge=1, le=MAX_ID, description="a configuration version")]

# RFC 3339 with its offset, years 1970-2999: the date arithmetic and the databases' timestamps hold
# every such moment (0001-01-01T00:00:00+01:00 overflowed once moved to UTC). The pattern is in the
# OpenAPI document too, so what the document calls valid is what the server takes.
MOMENT_PATTERN = (r"^(19[7-9]\d|2\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt]([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
                  r"(\.\d{1,6})?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$")
_MOMENT = re.compile(MOMENT_PATTERN)
MOMENT_HELP = "RFC 3339 with a timezone, years 1970-2999, e.g. 2026-11-23T08:00:00Z"


def _moment(value: Any) -> Any:
    # Before pydantic: it would take numbers (Unix seconds) and dates without a time or a zone.
    if value is None or isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _MOMENT.match(value):
        raise ValueError(f"not a moment: {MOMENT_HELP}")
    return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))


_MOMENT_SCHEMA = {"pattern": MOMENT_PATTERN}


def moment_query(description: str) -> Any:
    return Query(description=f"{description}; {MOMENT_HELP}", json_schema_extra=_MOMENT_SCHEMA)


Moment = Annotated[datetime, BeforeValidator(_moment), Field(json_schema_extra=_MOMENT_SCHEMA, description=MOMENT_HELP)]
Since = Annotated[datetime | None, BeforeValidator(_moment), moment_query("started at or after")]
Until = Annotated[datetime | None, BeforeValidator(_moment), moment_query("started before")]
