"""The app while the model loads: the page's files at once, API requests held until ready.

``rewrite ui`` starts listening before it imports torch and loads the model (about two
seconds on a laptop CPU), so the browser fetches the page and its scripts meanwhile. This
ASGI app serves those files from the start; a request to ``/api/`` waits until
:meth:`StartingApp.ready` hands over the real app (then every request goes there), or gets
a 503 naming the reason when loading failed. It imports neither torch nor the model code.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import anyio
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")


class StartingApp:
    """ASGI app: ``static`` files at once; everything else waits for :meth:`ready`."""

    def __init__(self, static: Path = STATIC):
        self._files = StaticFiles(directory=static, html=True)
        self._done = threading.Event()
        self.app = None
        self.failure: str | None = None

    def ready(self, app) -> None:
        """Hand over the real ASGI app: held and later requests go to it."""
        self.app = app
        self._done.set()

    def failed(self, reason: str) -> None:
        """Loading failed: held and later API requests get a 503 with ``reason``."""
        self.failure = reason
        self._done.set()

    async def __call__(self, scope, receive, send):
        if (
            self.app is None
            and scope["type"] == "http"
            and not scope["path"].startswith("/api/")
            and self.failure is None
        ):
            return await self._files(scope, receive, send)
        if not self._done.is_set():
            await anyio.to_thread.run_sync(self._done.wait)
        if self.app is not None:
            return await self.app(scope, receive, send)
        if scope["type"] != "http":
            return
        body = json.dumps({"detail": f"the app could not start: {self.failure}"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
