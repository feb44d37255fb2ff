"""The HTTP app ``replearn serve`` runs: MLflow's scoring server for a registered model, with bounded bodies.

MLflow's scoring server (``mlflow.pyfunc.scoring_server.init``: ``POST
/invocations``, ``GET /ping``, ``GET /version``) answers an unparsable body
with a 400 that repeats the whole body (a 1 MB invalid JSON came back whole),
and reads a request of any size. :func:`bounded` wraps it (ASGI):

* a request body over ``max_body`` bytes gets HTTP 413 with one line saying the
  limit, before the model sees it (the body is read up to the limit and
  handed on; ``Content-Length`` above the limit is refused unread);
* an error response (status >= 400) longer than ``max_error`` bytes is cut:
  a JSON error keeps its fields, its ``message`` shortened with
  ``... [cut: N bytes in all]``; any other body is cut the same way.

Answers under the limits pass unchanged. Query limits themselves (``topn``,
queries a request) are the engines' (serving/query_errors.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["MAX_BODY", "MAX_ERROR", "bounded", "scoring_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Largest request body, bytes (1,000 queries of a few hundred bytes each, or image queries, fit well).
MAX_BODY = 16 * 1024 * 1024
#: Largest error response body, bytes.
MAX_ERROR = 2048


def _cut(body: bytes, limit: int) -> bytes:
    """``body`` at most about ``limit`` bytes: a JSON object's ``message`` shortened, else the bytes cut."""
    if len(body) <= limit:
        return body
    note = f"... [cut: {len(body)} bytes in all]"
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        rest = len(json.dumps({**doc, "message": ""}).encode())
        keep = max(limit - rest - len(note), 80)
        out = json.dumps({**doc, "message": doc["message"][:keep] + note}).encode()
        if len(out) <= limit + 256:
            return out
    return body[:max(limit - len(note), 80)] + note.encode()


async def _send_json(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error_code": "REQUEST_TOO_LARGE" if status == 413 else "BAD_REQUEST",
                       "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def bounded(app: App, max_body: int = MAX_BODY, max_error: int = MAX_ERROR) -> App:
    """``app`` (ASGI) with request bodies capped at ``max_body`` bytes (HTTP 413) and error bodies at
    ``max_error`` bytes (the module's description)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        too_large = f"request body over {max_body:,} bytes; send at most that (fewer queries per request)"
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            await _send_json(send, 413, too_large)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > max_body:
                await _send_json(send, 413, too_large)
                return
        body, delivered = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: Message | None = None
        error_body: list[bytes] = []

        async def capped_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message  # held until the whole error body is known
                return
            if start is None:
                await send(message)
                return
            error_body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            out = _cut(b"".join(error_body), max_error)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            await send({**start, "headers": [*headers, (b"content-length", str(len(out)).encode())]})
            await send({"type": "http.response.body", "body": out})

        await app(scope, replay, capped_send)

    return wrapped


def scoring_app(model_uri: str) -> App:
    """MLflow's scoring server for the pyfunc at ``model_uri`` (``models:/NAME@ALIAS``), :func:`bounded`.

    Raises:
        mlflow.exceptions.MlflowException: no such registered model, version or alias.
    """
    import mlflow.pyfunc
    from mlflow.pyfunc import scoring_server

    return bounded(scoring_server.init(mlflow.pyfunc.load_model(model_uri)))
