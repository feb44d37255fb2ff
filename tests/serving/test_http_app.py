"""Bounded bodies around the scoring server (serving/http_app.py): a large request gets 413, a long error is cut,
everything else passes unchanged."""

from __future__ import annotations

import asyncio
import json

from replearn.serving.http_app import _cut, bounded


async def _echo_app(scope, receive, send):
    """Echoes the body; answers 400 repeating the whole body (as MLflow does for invalid JSON) when it is not JSON."""
    body = b""
    while True:
        m = await receive()
        body += m.get("body", b"")
        if not m.get("more_body"):
            break
    try:
        json.loads(body)
        status, out = 200, body
    except ValueError:
        status, out = 400, json.dumps({"error_code": "BAD_REQUEST", "message": f"Invalid input: {body.decode()}"}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


def _call(app, body: bytes, chunk: int = 1 << 16, declare: bool = True) -> tuple[int, dict, bytes]:
    parts = [body[i:i + chunk] for i in range(0, len(body), chunk)] or [b""]
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)} if parts \
            else {"type": "http.disconnect"}

    async def send(m):
        sent.append(m)

    headers = [(b"content-length", str(len(body)).encode())] if declare else []
    asyncio.run(app({"type": "http", "method": "POST", "path": "/invocations", "headers": headers}, receive, send))
    start = sent[0]
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    hdrs = dict(start["headers"])
    assert int(hdrs[b"content-length"]) == len(payload)
    return start["status"], hdrs, payload


def test_answers_under_the_limits_pass_unchanged():
    body = json.dumps({"dataframe_records": [{"positive": "king"}] * 50}).encode()
    assert _call(bounded(_echo_app), body) == (200, {b"content-type": b"application/json",
                                                     b"content-length": str(len(body)).encode()}, body)


def test_a_long_error_is_cut_and_stays_json():
    junk = b"{" + b"x" * 1_000_000  # a 1 MB invalid JSON body
    status, _, payload = _call(bounded(_echo_app, max_error=2048), junk)
    assert status == 400 and len(payload) <= 2048 + 256
    doc = json.loads(payload)
    assert doc["error_code"] == "BAD_REQUEST" and doc["message"].startswith("Invalid input: {xxx")
    assert doc["message"].endswith("bytes in all]")


def test_a_request_over_the_limit_gets_413_declared_or_streamed():
    big = b"[" + b"1," * 600 + b"1]"
    for declare in (True, False):
        status, _, payload = _call(bounded(_echo_app, max_body=1000), big, chunk=100, declare=declare)
        assert status == 413 and "over 1,000 bytes" in json.loads(payload)["message"]


def test_cut_of_a_plain_body_and_a_short_one():
    assert _cut(b"short", 100) == b"short"
    out = _cut(b"y" * 5000, 200)
    assert len(out) <= 200 and out.endswith(b"[cut: 5000 bytes in all]")
