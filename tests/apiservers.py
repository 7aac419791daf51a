"""Real servers for the API backend tests: vLLM's OpenAI-compatible server (the CPU build)
on the smoke model, and a fault-injecting proxy in front of it."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scalecap_ray.engine.vllm_engine import CPU_DEFAULTS
from tests.servers import free_port

SERVED_NAME = "smoke"


class VLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` (the `vllm` command needs package
    metadata that the CPU build names differently) with the engine's CPU settings."""

    def __init__(self, model: Path, log: Path, timeout: float = 600):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._log = open(log, "wb")  # noqa: SIM115 (open for the server's lifetime)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
             "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port),
             "--max-model-len", "8192", "--max-num-batched-tokens", "8192",
             "--gpu-memory-utilization", str(CPU_DEFAULTS["gpu_memory_utilization"]),
             "--block-size", str(CPU_DEFAULTS["block_size"]), "--enforce-eager",
             "--no-enable-chunked-prefill", "--limit-mm-per-prompt",
             '{"image": 1, "video": 0}', "--disable-log-stats"],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited; see {log}")
            try:
                urllib.request.urlopen(f"{self.url}/models", timeout=2).close()
                return
            except OSError:
                time.sleep(1)
        self.stop()
        raise RuntimeError(f"vLLM server did not come up in {timeout} s; see {log}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@dataclass
class Fault:
    """Answer requests whose body contains `match` with `status` (or stall `delay_s`
    first), `times` times (None: always)."""

    match: str = ""
    status: int | None = None
    delay_s: float = 0.0
    times: int | None = None
    hits: int = 0


@dataclass
class ProxyLog:
    times: list[float] = field(default_factory=list)  # arrival of every request
    forwarded: int = 0


class FaultProxy(http.server.ThreadingHTTPServer):
    """Forwards to `upstream`, except where a fault applies; `rewrite` may change a
    forwarded request body or response (e.g. to play an endpoint without logprobs)."""

    daemon_threads = True

    def __init__(self, upstream: str, faults: list[Fault] | None = None,
                 rewrite_request: Callable[[dict], dict | None] | None = None,
                 rewrite_response: Callable[[dict], dict] | None = None):
        self.upstream = upstream.rstrip("/")
        self.faults = faults or []
        self.rewrite_request, self.rewrite_response = rewrite_request, rewrite_response
        self.log = ProxyLog()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def fault_for(self, body: str) -> Fault | None:
        with self.lock:
            self.log.times.append(time.monotonic())
            for fault in self.faults:
                if fault.match in body and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: FaultProxy

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        with urllib.request.urlopen(self.server.upstream + self.path.removeprefix("/v1"),
                                    timeout=30) as resp:
            self._reply(resp.status, json.load(resp))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        fault = self.server.fault_for(body)
        if fault is not None:
            time.sleep(fault.delay_s)
            if fault.status is not None:
                self._reply(fault.status, {"error": {"message": f"injected {fault.status}",
                                                     "type": "injected", "code": fault.status}})
                return
        payload = json.loads(body)
        if self.server.rewrite_request is not None:
            rewritten = self.server.rewrite_request(payload)
            if rewritten is None:
                self._reply(400, {"error": {"message": "unsupported parameter",
                                            "type": "invalid_request_error"}})
                return
            payload = rewritten
        req = urllib.request.Request(self.server.upstream + self.path.removeprefix("/v1"),
                                     data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=600) as resp:
                status, answer = resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, json.load(exc)
        with self.server.lock:
            self.server.log.forwarded += 1
        if self.server.rewrite_response is not None and status == 200:
            answer = self.server.rewrite_response(answer)
        self._reply(status, answer)
