"""Real local Ray clusters for tests: a head (and optional workers) started with
`ray start --block`, so tests can do what a user does (`ray job submit`, token auth,
several nodes) instead of an in-process `ray.init()`.

Every port is picked at runtime, and every default that would collide with another Ray
on the machine (GCS 6379, dashboard 8265, client server 10001, dashboard agent 52365,
worker ports 10002-19999, /tmp/ray) is overridden, so clusters can run side by side.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.servers import free_port

VENV_BIN = Path(sys.executable).parent
# Set in the daemons' environment only.  Ray hands its environment down to everything
# it starts, and job drivers leave the `ray start` session (setsid): this finds them.
MARK = "LOCALCLUSTER_ID"
# The client settings a test runner may carry, which must not point at another cluster.
_DROP = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",
         "RAY_AUTH_TOKEN_PATH")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cluster_pids(tag: str, sessions: set[int]) -> list[int]:
    """Live processes (zombies excluded) of cluster `tag`: those in the sessions of its
    `ray start` processes, plus those carrying its mark.  Neither test alone suffices:
    workers stay in the session but not in the process group (setpgid), job drivers
    leave both (setsid), and the `ray::`/`ray-dashboard-` processes write their title
    over their environ block, so /proc/PID/environ no longer shows the mark."""
    needle = f"\0{MARK}={tag}\0".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                state, _ppid, _pgid, sid = f.read().rsplit(b")", 1)[1].split()[:4]
            if state != b"Z" and int(sid) in sessions:
                pids.append(int(entry.name))
            elif state != b"Z":
                with open(f"/proc/{entry.name}/environ", "rb") as f:
                    if needle in b"\0" + f.read():
                        pids.append(int(entry.name))
        except (OSError, ValueError):
            pass  # gone meanwhile, or not ours to read
    return pids


class LocalCluster:
    """Head (and optional workers) started with `ray start --block`, each in a session
    of its own.  `root` (one per cluster) gets the `ray start` output and, on stop, the
    session logs."""

    def __init__(self, root: Path, *, token: str | None = None, num_cpus: int = 2,
                 num_gpus: int = 0, resources: dict[str, float] | None = None,
                 env: dict[str, str] | None = None, object_store_mb: int = 300,
                 timeout: float = 180) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # Short and unique: Ray's unix sockets live under it (108-byte path limit).
        self.temp_dir = Path(tempfile.mkdtemp(prefix="lc", dir="/tmp"))
        self.tag = self.temp_dir.name
        self.token = token
        # Explicit mode: left unset, `ray start` turns token auth on whenever
        # ~/.ray/auth_token exists, and any local ray.init() writes that file.
        auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {
            "RAY_AUTH_MODE": "disabled"}
        self.env: dict[str, str] = {
            **{k: v for k, v in os.environ.items() if k not in _DROP},
            # Job entrypoints run the `python` on the daemons' PATH: this venv's.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            # On SIGTERM a node otherwise drains for 30 s before it exits.
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "RAY_USAGE_STATS_ENABLED": "0", **auth, **(env or {})}
        self._procs: list[subprocess.Popen[bytes]] = []
        self.port, dashboard_port = free_port(), free_port()
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        try:
            self._start("head", timeout, num_cpus, num_gpus, resources, object_store_mb,
                        "--head", f"--port={self.port}", f"--dashboard-port={dashboard_port}",
                        "--dashboard-host=127.0.0.1", "--include-dashboard=true",
                        f"--ray-client-server-port={free_port()}")
            # Ray replaces --node-ip-address=127.0.0.1 by the host's routable address
            # (services.resolve_ip_for_localhost): report the one it registered.
            self.gcs_address = f"{self.alive_nodes()[0]['node_ip']}:{self.port}"
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, timeout: float, num_cpus: int, num_gpus: int,
               resources: dict[str, float] | None, object_store_mb: int, *args: str) -> None:
        log_path = self.root / f"ray-{name}.log"
        expected = len(self._procs) + 1
        with open(log_path, "wb") as log:
            self._procs.append(subprocess.Popen(
                [str(VENV_BIN / "ray"), "start", "--block", *args, "--disable-usage-stats",
                 f"--temp-dir={self.temp_dir}", "--node-ip-address=127.0.0.1",
                 f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}",
                 f"--resources={json.dumps(resources or {})}",
                 f"--object-store-memory={object_store_mb * 2**20}",
                 f"--dashboard-agent-listen-port={free_port()}",
                 "--min-worker-port=0", "--max-worker-port=0"],  # 0: any free port
                env={**self.env, MARK: self.tag}, cwd=self.temp_dir, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + timeout
        while len(self.alive_nodes()) < expected:
            if self._procs[-1].poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"ray start ({name}) did not come up:\n{tail}")
            time.sleep(0.5)

    def add_worker(self, *, num_cpus: int = 2, num_gpus: int = 0,
                   resources: dict[str, float] | None = None, object_store_mb: int = 300,
                   timeout: float = 180) -> None:
        """Start one more node (`ray start --address`); return once it is ALIVE."""
        self._start(f"worker{len(self._procs)}", timeout, num_cpus, num_gpus, resources,
                    object_store_mb, f"--address={self.gcs_address}")

    def api(self, path: str) -> Any:
        """GET a dashboard endpoint (with the token) and decode its JSON."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        req = urllib.request.Request(self.dashboard_url + path, headers=headers)
        with _NO_PROXY.open(req, timeout=10) as resp:
            return json.load(resp)

    def alive_nodes(self) -> list[dict[str, Any]]:
        """The state API's ALIVE nodes ([] while the dashboard is not up yet)."""
        try:
            nodes = self.api("/api/v0/nodes?detail=1&limit=100")["data"]["result"]["result"]
        except (OSError, ValueError, KeyError):
            return []
        return [n for n in nodes if n["state"] == "ALIVE"]

    def run(self, *args: str, timeout: float = 300,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a command (e.g. "ray", "job", "submit", ...) with this cluster's env; a
        bare "ray" or "python" is this venv's."""
        cmd = [str(VENV_BIN / args[0]) if args[0] in ("ray", "python") else args[0], *args[1:]]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=check)

    def pids(self) -> list[int]:
        """Live processes of this cluster (see cluster_pids)."""
        return cluster_pids(self.tag, {p.pid for p in self._procs})

    def stop(self, grace: float = 10) -> None:
        """SIGTERM every process of the cluster, SIGKILL what is left after `grace`
        seconds, and wait until none is left.  Idempotent."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30)):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.2)
        left = self.pids()
        for proc in self._procs:
            proc.wait(timeout=10)
        self._procs = []  # reaped: their pids may be reused, never signal them again
        if self.temp_dir.exists():
            logs = self.temp_dir / "session_latest" / "logs"
            if logs.is_dir() and not (self.root / "ray-logs").exists():
                shutil.move(logs, self.root / "ray-logs")
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        if left:
            raise RuntimeError(f"processes of cluster {self.tag} survived SIGKILL: {left}")

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
