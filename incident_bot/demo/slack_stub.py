"""A local stand-in for the Slack Web API that records every call (demo and tests; Slack itself is the
one edge we cannot reach here). Point ``WebClient(base_url=stub.base_url)`` at it."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Failure:
    """An injected failure: answer ``status`` (429 with ``retry_after``, 5xx) or hang until ``release`` is
    set, for the next ``times`` calls of ``method`` (None: until cleared). With ``delay`` the call is done
    (a post is in the channel's history at once) and only the answer comes ``delay`` seconds late: a Slack
    slower than the client's timeout, whose outcome the client cannot know."""

    method: str
    status: int = 500
    retry_after: float | None = None
    times: int | None = None
    release: threading.Event | None = None
    delay: float | None = None


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    token: str | None
    response: dict[str, Any]
    at: float = 0.0  # time.monotonic() when the stub took the call (benchmarks: alert-to-post latency)


class SlackStub:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.calls: list[ApiCall] = []  # answered ok (failed attempts are in ``failed``)
        self.failed: list[tuple[str, int]] = []  # (method, status) of every injected failure
        self._failures: list[Failure] = []
        self.usergroups: dict[str, list[str]] = {}  # answered by usergroups.users.list; set by tests
        self.usergroup_errors: dict[str, str] = {}  # group -> Slack error (e.g. missing_scope); set by tests
        self.uploads: dict[str, bytes] = {}  # file id -> bytes POSTed to the upload URL (files_upload_v2)
        self.messages: dict[str, list[dict[str, Any]]] = {}  # channel id -> posted messages, oldest first
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._last_ts = 0.0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API): conversations.history is a GET
                path, _, query = self.path.partition("?")
                self._call(path, {k: v[0] for k, v in parse_qs(query).items()})

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("Content-Length", 0))
                if self.path.startswith("/upload/"):  # step 2 of files_upload_v2: raw bytes, answers "OK"
                    stub._upload(self.path.removeprefix("/upload/"), self.rfile.read(length))
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"OK")
                    return
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                    for key in ("blocks", "view", "attachments", "files", "metadata"):
                        if isinstance(params.get(key), str):
                            params[key] = json.loads(params[key])
                self._call(self.path, params)

            def _call(self, path: str, params: dict[str, Any]) -> None:
                auth = self.headers.get("Authorization", "")
                method = path.rsplit("/", 1)[-1]
                failure = stub._take_failure(method)
                if failure is not None and failure.delay is not None:  # done now, answered late
                    late = json.dumps(stub._answer(method, params, auth.removeprefix("Bearer ") or None))
                    time.sleep(failure.delay)
                    self._reply(200, late.encode())
                    return
                if failure is not None and failure.release is not None:
                    failure.release.wait(120)  # a hanging Slack: the client times out first
                elif failure is not None:
                    error = "ratelimited" if failure.status == 429 else "internal_error"
                    fbody = json.dumps({"ok": False, "error": error}).encode()
                    self.send_response(failure.status)
                    self.send_header("Content-Type", "application/json")
                    if failure.retry_after is not None:
                        self.send_header("Retry-After", f"{failure.retry_after:g}")
                    self.send_header("Content-Length", str(len(fbody)))
                    self.end_headers()
                    self.wfile.write(fbody)
                    return
                body = json.dumps(stub._answer(method, params, auth.removeprefix("Bearer ") or None)).encode()
                self._reply(200, body)

            def _reply(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up waiting (a delayed answer): nothing to tell it
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        # a short poll interval: shutdown() waits up to one interval (the default 0.5 s, paid by every test)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def start(self) -> SlackStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SlackStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(
        self, method: str, *, status: int = 500, retry_after: float | None = None, times: int | None = None
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``*``: any) answer ``status`` (e.g. 429 + Retry-After)."""
        with self._cond:
            self._failures.append(Failure(method, status, retry_after, times))

    def delay(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Make calls of ``method`` take effect at once but answer ``seconds`` late (longer than the client's
        timeout: the caller sees a timeout for a call that succeeded)."""
        with self._cond:
            self._failures.append(Failure(method, 200, None, times, None, seconds))

    def hang(self, method: str, release: threading.Event, *, times: int | None = None) -> None:
        """Make calls of ``method`` hang until ``release`` is set (or the client gives up)."""
        with self._cond:
            self._failures.append(Failure(method, 0, None, times, release))

    def heal(self) -> None:
        """Stop every injected failure (hanging calls are released by their own events)."""
        with self._cond:
            self._failures.clear()

    def _take_failure(self, method: str) -> Failure | None:
        with self._cond:
            for f in self._failures:
                if f.method in (method, "*"):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._failures.remove(f)
                    if f.release is None and f.delay is None:
                        self.failed.append((method, f.status))
                        self._cond.notify_all()
                    return f
        return None

    def _next_ts(self) -> str:
        """Slack's ts: the message's time in seconds, unique per channel (here: per stub)."""
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        with self._cond:
            ts = self._next_ts()
            if method == "usergroups.users.list":
                group = str(params.get("usergroup", ""))
                response = (
                    {"ok": False, "error": self.usergroup_errors[group]}
                    if group in self.usergroup_errors
                    else {"ok": True, "users": list(self.usergroups[group])}
                    if group in self.usergroups
                    else {"ok": False, "error": "no_such_subteam"}
                )
            elif method == "files.getUploadURLExternal":
                file_id = f"F{next(self._ts):06d}"
                response = {
                    "ok": True,
                    "file_id": file_id,
                    "upload_url": f"{self.base_url.removesuffix('/api/')}/upload/{file_id}",
                }
            elif method == "conversations.history":
                response = self._history(params)
            else:
                response = self._response(method, params, ts)
                if method == "chat.postMessage":
                    self._keep_message(str(response["channel"]), ts, params)
            if method == "auth.test" and token == "xoxb-invalid":  # noqa: S105 (the stub's bad token)
                response = {"ok": False, "error": "invalid_auth"}
            self.calls.append(ApiCall(method, params, token, response, time.monotonic()))
            self._cond.notify_all()
        return response

    def _keep_message(self, channel: str, ts: str, params: dict[str, Any]) -> None:
        message: dict[str, Any] = {"type": "message", "ts": ts, "text": params.get("text"), "bot_id": "B0BOT"}
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        if isinstance(params.get("metadata"), dict):
            message["metadata"] = params["metadata"]
        self.messages.setdefault(channel, []).append(message)

    def _history(self, params: dict[str, Any]) -> dict[str, Any]:
        """``conversations.history`` as Slack answers it: top-level messages newest first, within
        ``oldest``/``latest``, ``limit`` per page with a cursor, metadata only with ``include_all_metadata``."""
        channel = str(params.get("channel", ""))
        if not channel.startswith("C0"):  # as Slack: an id, never a #name
            return {"ok": False, "error": "channel_not_found"}
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or "inf")
        limit = min(max(int(params.get("limit") or 100), 1), 999)
        start = int(params.get("cursor") or 0)
        with_metadata = str(params.get("include_all_metadata", "")).lower() in {"1", "true"}
        rows = [
            m
            for m in reversed(self.messages.get(channel, []))
            if oldest < float(m["ts"]) <= latest and m.get("thread_ts", m["ts"]) == m["ts"]
        ]
        page = [
            m if with_metadata else {k: v for k, v in m.items() if k != "metadata"}
            for m in rows[start : start + limit]
        ]
        more = start + limit < len(rows)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    @staticmethod
    def _response(method: str, params: dict[str, Any], ts: str) -> dict[str, Any]:
        channel = _channel_id(params.get("channel", "C0INCIDENTS"))
        if method == "auth.test":
            return {
                "ok": True,
                "user_id": "U0BOT",
                "bot_id": "B0BOT",
                "team_id": "T0TEAM",
                "user": "incident-bot",
            }
        if method in {"chat.postMessage", "chat.update"}:
            return {
                "ok": True,
                "channel": channel,
                "ts": params.get("ts", ts),
                "message": {"text": params.get("text")},
            }
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "conversations.info":
            return {"ok": True, "channel": {"id": channel, "name": "incidents", "is_member": True}}
        if method == "files.completeUploadExternal":
            return {
                "ok": True,
                "files": [{"id": f["id"], "title": f.get("title")} for f in params.get("files") or []],
            }
        if method == "views.publish":
            return {"ok": True, "view": {"id": "V0HOME", **(params.get("view") or {})}}
        if method == "views.open":
            return {"ok": True, "view": {"id": "V0VIEW", **(params.get("view") or {})}}
        return {"ok": True}

    def _upload(self, file_id: str, data: bytes) -> None:
        with self._cond:
            self.uploads[file_id] = data
            self.calls.append(
                ApiCall("upload", {"file_id": file_id, "length": len(data)}, None, {"ok": True})
            )
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[list[ApiCall]], bool], timeout: float = 10.0) -> list[ApiCall]:
        """Block until ``predicate(calls)`` holds (no sleeping loop); raises TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self.calls), timeout=timeout):
                raise TimeoutError(
                    f"Slack stub: condition not met within {timeout}s; calls: "
                    f"{[c.method for c in self.calls]}"
                )
            return list(self.calls)

    def wait_for_failures(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least ``count`` injected failures have been answered."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.failed) >= count, timeout=timeout):
                raise TimeoutError(
                    f"Slack stub: {len(self.failed)} failures within {timeout}s, wanted {count}"
                )

    def of(self, method: str) -> list[ApiCall]:
        with self._cond:
            return [c for c in self.calls if c.method == method]


def _channel_id(channel: str) -> str:
    """The stub has one channel: a ``#name`` is it."""
    return "C0INCIDENTS" if channel.startswith("#") or not channel else channel


def find_button(blocks: list[dict[str, Any]], label_prefix: str) -> dict[str, Any]:
    """The first button in ``blocks`` whose label starts with ``label_prefix`` (to click it as a user would)."""
    for block in blocks:
        for el in block.get("elements", []) if block.get("type") == "actions" else []:
            if el.get("type") == "button" and el["text"]["text"].startswith(label_prefix):
                return dict(el)
    raise LookupError(f"no button starting with {label_prefix!r}")


def block_action_body(
    *, user: str, button: dict[str, Any], channel: str, message_ts: str, trigger_id: str = "T0TRIGGER"
) -> bytes:
    """A ``block_actions`` interaction payload as Slack sends it (form-encoded ``payload=<json>``)."""
    from urllib.parse import urlencode

    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0APP",
        "token": "legacy-unused",
        "trigger_id": trigger_id,
        "team": {"id": "T0TEAM"},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel, "name": "incidents"},
        "message": {"ts": message_ts},
        "actions": [
            {
                "type": "button",
                "action_id": button["action_id"],
                "block_id": button.get("block_id", "b"),
                "value": button.get("value", ""),
                "action_ts": "1700000000.000001",
                "text": button["text"],
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def view_submission_body(*, user: str, view: dict[str, Any], values: dict[str, Any]) -> bytes:
    from urllib.parse import urlencode

    payload = {
        "type": "view_submission",
        "user": {"id": user, "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "trigger_id": "T0TRIGGER",
        "view": {**view, "id": "V0VIEW", "state": {"values": values}},
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed_headers(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Slack would send, signed with ``slack_sdk.signature.SignatureVerifier``."""
    from slack_sdk.signature import SignatureVerifier

    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = SignatureVerifier(signing_secret).generate_signature(timestamp=ts, body=body.decode()) or ""
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": sig,
        "Content-Type": "application/x-www-form-urlencoded",
    }
