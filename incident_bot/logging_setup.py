"""Logging for `serve`: LOG_LEVEL governs the bot's own loggers (incident_bot, bot, handlers, retrieval);
LOG_FORMAT=json writes one JSON object per line (for log shippers), and then *every* line is JSON:

- what third-party libraries write goes through the same handler: their loggers propagate to the root
  (uvicorn, slack_sdk, sentence-transformers, matplotlib's "cache directory" notices); transformers' own
  stderr handler is replaced by propagation; ``warnings.warn`` is routed by ``logging.captureWarnings``;
  uncaught exceptions in the main thread and in other threads are logged, not printed;
- progress bars (transformers' "Loading weights", huggingface_hub, tqdm) are switched off: they are
  terminal animations, not log lines.

Each line carries ``request_id``, ``incident_id`` and ``source`` from bot/kernel/logcontext.py when
known. The same warning or error (logger, level, message with numbers masked, exception type) within
``repeat_window`` seconds is written once; the repeats are counted and written as one line
"… repeated N times" (field ``repeated``) when the window ends, so an outage writes a few lines, not 40
tracebacks in 20 s.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

from bot.kernel import logcontext

OWN = ("incident_bot", "bot", "handlers", "retrieval")
REPEAT_WINDOW_SECONDS = 60.0
_NUMBERS = re.compile(r"\d+")
_MAX_TRACKED = 1000  # distinct repeating messages remembered at once (the oldest is forgotten first)
log = logging.getLogger(__name__)


class ContextFilter(logging.Filter):
    """Copies the log context (request, incident, source) onto the record; ``extra=`` values win."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = logcontext.current()
        for field in logcontext.FIELDS:
            if getattr(record, field, None) is None:
                setattr(record, field, ctx.get(field))
        return True


@dataclass
class _Seen:
    since: float  # when the window of this message started (its last full write)
    repeats: int = 0
    last: logging.LogRecord | None = None  # the latest repeat, for the summary line


class RepeatLimiter:
    """Decides which warnings and errors are written: the first of a kind in a window, then one summary."""

    def __init__(self, window: float = REPEAT_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[Any, ...], _Seen] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(record: logging.LogRecord) -> tuple[Any, ...]:
        """Same logger, level, message with its numbers masked (row ids, counts, durations) and exception
        type: "outbox row #12 failed" and "#13" are one error; two different runbook problems are two."""
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        return (record.name, record.levelno, _NUMBERS.sub("#", record.getMessage()[:300]), exc)

    def admit(self, record: logging.LogRecord) -> tuple[bool, list[logging.LogRecord]]:
        """(write this record?, summary records now due)."""
        now = self._clock()
        with self._lock:
            due = self._expire(now)
            if record.levelno < logging.WARNING or getattr(record, "repeated", None) is not None:
                return True, due
            key = self.key(record)
            seen = self._seen.get(key)
            if seen is not None and now - seen.since < self.window:
                seen.repeats += 1
                seen.last = record
                return False, due
            if len(self._seen) >= _MAX_TRACKED:
                oldest = min(self._seen, key=lambda k: self._seen[k].since)
                due.extend(self._summary(self._seen.pop(oldest)))
            self._seen[key] = _Seen(since=now)
            return True, due

    def flush(self) -> list[logging.LogRecord]:
        """Every pending summary (at shutdown)."""
        with self._lock:
            due = [r for s in self._seen.values() for r in self._summary(s)]
            self._seen.clear()
            return due

    def _expire(self, now: float) -> list[logging.LogRecord]:
        expired = [k for k, s in self._seen.items() if now - s.since >= self.window]
        return [r for k in expired for r in self._summary(self._seen.pop(k))]

    def _summary(self, seen: _Seen) -> list[logging.LogRecord]:
        if not seen.repeats or seen.last is None:
            return []
        summary = logging.makeLogRecord(
            {
                **seen.last.__dict__,
                "msg": f"{seen.last.getMessage()} … repeated {seen.repeats} times in {self.window:g} s",
                "args": None,
                "exc_info": None,
                "exc_text": None,
                "stack_info": None,
                "repeated": seen.repeats,
            }
        )
        return [summary]


class LogHandler(logging.StreamHandler[TextIO]):
    """stderr, with the log context on every record and repeated warnings/errors limited."""

    def __init__(self, limiter: RepeatLimiter) -> None:
        super().__init__()
        self.limiter = limiter
        self.addFilter(ContextFilter())

    def handle(self, record: logging.LogRecord) -> bool:
        if not self.filter(record):
            return False
        write, due = self.limiter.admit(record)
        for summary in due:
            super().handle(summary)
        return super().handle(record) if write else False

    def close(self) -> None:
        for summary in self.limiter.flush():
            super().handle(summary)
        super().close()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in (*logcontext.FIELDS, "repeated"):
            value = getattr(record, field, None)
            if value is not None:
                out[field] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{f}={getattr(record, f)}" for f in logcontext.FIELDS if getattr(record, f, None) is not None
        ]
        if not fields:
            return line
        head, sep, rest = line.partition("\n")  # the fields go on the message line, before a traceback
        return f"{head} [{' '.join(fields)}]{sep}{rest}"


def configure(
    *,
    level: str = "INFO",
    fmt: str = "text",
    verbose: bool = False,
    repeat_window: float = REPEAT_WINDOW_SECONDS,
) -> None:
    quiet_progress_bars()
    handler = LogHandler(RepeatLimiter(window=repeat_window))
    handler.setFormatter(JsonFormatter() if fmt.lower() == "json" else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)  # third-party libraries stay quiet
    own = logging.DEBUG if verbose else getattr(logging, level.upper(), logging.INFO)
    for name in OWN:
        logging.getLogger(name).setLevel(own)
    logging.captureWarnings(True)  # warnings.warn(...) -> the "py.warnings" logger -> this handler
    _route_transformers()
    _saved_hooks.setdefault("sys", sys.excepthook)
    _saved_hooks.setdefault("threading", threading.excepthook)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


_saved_hooks: dict[str, Any] = {}


def reset() -> None:
    """Undo ``configure`` (tests that configure logging inside a test process)."""
    root = logging.getLogger()
    for handler in root.handlers:
        handler.close()
    root.handlers.clear()
    logging.captureWarnings(False)
    sys.excepthook = _saved_hooks.pop("sys", sys.__excepthook__)
    threading.excepthook = _saved_hooks.pop("threading", threading.__excepthook__)


def quiet_progress_bars() -> None:
    """Before the model loads: huggingface_hub and transformers read this when imported; tqdm reads
    TQDM_DISABLE for every bar it draws (sentence-transformers' "Batches" included)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    if "transformers.utils.logging" in sys.modules:  # already imported (a test, an embedding process)
        sys.modules["transformers.utils.logging"].disable_progress_bar()


def _route_transformers() -> None:
    """transformers writes to stderr with a handler of its own (and does not propagate); send its
    records through ours instead. Skipped when transformers is not installed (the ONNX-only install)."""
    if importlib.util.find_spec("transformers") is None:
        return
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    log.critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "?"
    log.error(
        "uncaught exception in thread %s", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )
