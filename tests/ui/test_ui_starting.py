"""The app while the model loads (rewrite/ui/starting.py): ``rewrite ui`` listens before it
imports torch, so the page's files are served at once and API requests wait for the model."""

import subprocess
import sys
import threading
import time

from fastapi import FastAPI
from fastapi.testclient import TestClient

from rewrite.ui.starting import STATIC, StartingApp

from ..conftest import ROOT


def _real_app() -> FastAPI:
    app = FastAPI()

    @app.get("/api/info")
    def info():
        return {"ready": True}
    return app


def test_the_page_is_served_before_the_model_is_ready():
    starting = StartingApp()
    page = TestClient(starting).get("/")
    assert page.status_code == 200 and page.text == (STATIC / "index.html").read_text()


def test_api_requests_wait_for_the_real_app_then_reach_it():
    starting = StartingApp()
    timer = threading.Timer(0.3, starting.ready, args=(_real_app(),))
    t0 = time.perf_counter()
    timer.start()
    reply = TestClient(starting).get("/api/info")
    assert reply.json() == {"ready": True} and time.perf_counter() - t0 >= 0.25
    assert TestClient(starting).get("/api/info").json() == {"ready": True}


def test_a_failed_start_answers_503_with_the_reason():
    starting = StartingApp()
    starting.failed("unknown model 'x'")
    reply = TestClient(starting).get("/api/info")
    assert reply.status_code == 503 and "unknown model 'x'" in reply.json()["detail"]


def test_the_ui_command_serves_the_page_before_the_model_is_loaded(tmp_path):
    """In a fresh interpreter: the first request for the page is answered while the model
    is still loading (the real app not yet handed over)."""
    code = (
        "import sys, threading, urllib.request, time\n"
        "from rewrite.ui import starting\n"
        "seen = {}\n"
        "orig = starting.StartingApp.__call__\n"
        "async def call(self, scope, receive, send):\n"
        "    seen.setdefault('loading', self.app is None)\n"
        "    return await orig(self, scope, receive, send)\n"
        "starting.StartingApp.__call__ = call\n"
        "def probe():\n"
        "    while True:\n"
        "        try:\n"
        "            urllib.request.urlopen('http://127.0.0.1:%d/', timeout=5).read(); break\n"
        "        except OSError: time.sleep(0.01)\n"
        "    print('page served while loading:', seen['loading'], flush=True)\n"
        "    import os; os._exit(0)\n"
        "threading.Thread(target=probe, daemon=True).start()\n"
        "from rewrite.cli.main import main\n"
        "main(['ui', '--port', '%d', '--workspace', %r])\n")
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run([sys.executable, "-c", code % (port, port, str(tmp_path))], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert "page served while loading: True" in out.stdout, out.stdout + out.stderr
