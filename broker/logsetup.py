"""One logging set-up for every sharpeyes process (edge, central and its receiving process, tools):
``time LEVEL module: message`` lines on stderr, or one JSON object per line for a log shipper
(``--log-format json`` or ``SHARPEYES_LOG_FORMAT=json``). Loggers are named after their modules
(``logging.getLogger(__name__)``); ``central.access`` is the one named channel, for refusals."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

FORMAT_ENV = "SHARPEYES_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Chatty libraries whose INFO lines say nothing an operator needs.
QUIET = ("amqtt", "transitions", "pymodbus", "httpx", "botocore", "urllib3")


class JsonLines(logging.Formatter):
    """{"ts", "level", "logger", "msg"} plus the exception and any ``extra=`` fields, one per line."""

    _STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname, "logger": record.name, "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._STANDARD and not k.startswith("_")})
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str | int = "INFO", log_format: str | None = None, stream: TextIO | None = None) -> None:
    """Configure the root logger once for this process (again replaces the handler)."""
    chosen = (log_format or os.environ.get(FORMAT_ENV) or "text").lower()
    if chosen not in ("text", "json"):
        raise ValueError(f"log format {chosen!r}: use text or json")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
