"""Real servers on 127.0.0.1 for the I/O tests: an S3-compatible server (moto) and an
HTTP image server with forbidden, failing and flaky paths."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    """moto's server mode in a subprocess; `env` holds what clients need."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test",
                    "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
        # This interpreter's moto (a `moto_server` on PATH may be another install).
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("moto server did not start")

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: HTTPImageServer

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.hits[self.path] += 1
        if self.path.startswith("/forbidden/"):
            self.send_error(403)
        elif self.path.startswith("/broken/"):
            self.send_error(500)
        elif self.path.startswith("/flaky/") and self.server.hits[self.path] <= 2:
            self.send_error(503)
        else:
            self.path = "/" + self.path.split("/", 2)[-1] if self.path.startswith("/flaky/") \
                else self.path
            super().do_GET()


class HTTPImageServer(http.server.ThreadingHTTPServer):
    """Serves `root`; /forbidden/* answers 403, /broken/* 500, /flaky/* 503 twice then the
    file.  `hits` counts requests per path."""

    def __init__(self, root: Path):
        self.hits: Counter[str] = Counter()
        handler = lambda *a, **kw: _Handler(*a, directory=str(root), **kw)  # noqa: E731
        super().__init__(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def with_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env}
