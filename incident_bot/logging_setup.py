"""Logging for `serve` and the CLI: LOG_LEVEL governs the bot's own loggers (incident_bot, bot, handlers, retrieval);
LOG_FORMAT=json writes one JSON object per line (for log shippers)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

OWN = ("incident_bot", "bot", "handlers", "retrieval")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(*, level: str = "INFO", fmt: str = "text", verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    if fmt.lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)  # third-party libraries stay quiet
    own = logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO)
    for name in OWN:
        logging.getLogger(name).setLevel(own)
