"""What a request must satisfy before the app sees it: a host name the server was started
for, a same-site origin for anything that changes state, and a bounded body.

A web page the user visits elsewhere could otherwise drive the local server: by DNS
rebinding (its own host name resolving to 127.0.0.1) or by a cross-site form post. The
body limit counts the bytes actually received, so a chunked upload without
``Content-Length`` is bounded too.

Usage::

    app = Guard(fastapi_app, hosts={"127.0.0.1", "localhost", "::1"}, max_body=4 << 20)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

#: Host names a local server answers to besides the one it was started with.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Methods that change the server's state (and so need a same-site origin).
CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


#: Largest request body accepted (masks are small PNGs).
MAX_BODY = 4 * 1024 * 1024


def host_name(value: str) -> str:
    """``"127.0.0.1:8000"`` -> ``"127.0.0.1"``, ``"[::1]:8000"`` -> ``"::1"`` (lower case)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """ASGI middleware enforcing the host, origin and body-size rules of the module."""

    #: The FastAPI object it guards (routes, OpenAPI schema), set by ``create_app``.
    api: Any

    def __init__(self, app, hosts: Iterable[str], max_body: int):
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])
        }
        host = host_name(headers.get("host", ""))
        if host not in self.hosts:
            return await _reply(
                send,
                400,
                f"unknown host {host!r}: this server answers to {', '.join(sorted(self.hosts))}",
            )
        origin = headers.get("origin")
        if scope["method"] in CHANGING and origin is not None and origin != "null":
            if host_name(urlsplit(origin).netloc) not in self.hosts:
                return await _reply(
                    send, 403, f"requests from {origin} may not change this server's state"
                )
        elif scope["method"] in CHANGING and origin == "null":
            return await _reply(
                send, 403, "requests from an opaque origin may not change this server's state"
            )
        size = headers.get("content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_body):
            return await _reply(send, 413, f"request body over {self.max_body // 1024} KiB")
        # Read the body (bounded), then hand it on: chunked uploads are counted too.
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_body:
                return await _reply(send, 413, f"request body over {self.max_body // 1024} KiB")
            chunks.append(body)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _reply(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
