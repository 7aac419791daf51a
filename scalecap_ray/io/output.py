"""Output: Parquet part files written as the job streams, and what makes a rerun resume.

Each part file is written whole under a hidden temporary name (readers skip names that
start with "." or "_") and renamed into place, so a reader, or a resumed run, never sees
half a file.  On object stores a file only appears when its upload completes, so it is
written under its final name directly.  `_scalecap_run.json` records the job and the
configuration that decides the results; a rerun with another one is refused unless
forced.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

from scalecap_ray.io import storage

RUN_FILE = "_scalecap_run.json"
PART_PREFIX = "part-"
TMP_PREFIX = ".tmp-"

# Config fields that change how fast a job runs but not what it writes.
RESOURCE_FIELDS = {"batch_size", "concurrency", "num_cpus", "num_gpus", "replicas",
                   "accelerator_type", "max_num_seqs", "gpu_memory_utilization",
                   "download_dir", "limit", "rows_per_file", "row_group_rows",
                   "placement_strategy", "resources", "weights_gb"}


class ResumeError(ValueError):
    """The output folder holds a run that this one may not continue."""


def result_settings(config_dump: dict[str, Any]) -> dict[str, Any]:
    """The part of a config dump that decides results (resources left out)."""
    return {k: result_settings(v) if isinstance(v, dict) else v
            for k, v in config_dump.items() if k not in RESOURCE_FIELDS}


def fingerprint(settings: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _differences(a.get(key), b.get(key), f"{prefix}{key}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


@dataclass(frozen=True)
class OutputFolder:
    path: str
    retry: storage.RetryPolicy = storage.DEFAULT_RETRY

    def _fs(self) -> tuple[fs.FileSystem, str]:
        return storage.filesystem(self.path, self.retry)

    def _entries(self) -> list[fs.FileInfo]:
        filesystem, inner = self._fs()
        if filesystem.get_file_info(inner).type == fs.FileType.NotFound:
            return []
        return filesystem.get_file_info(fs.FileSelector(inner, recursive=False))

    def parts(self) -> list[str]:
        """The finished part files (paths inside the filesystem)."""
        return sorted(i.path for i in self._entries()
                      if i.base_name.startswith(PART_PREFIX) and i.base_name.endswith(".parquet"))

    def dataset(self):
        """The finished part files as one pyarrow dataset."""
        import pyarrow.dataset as pads

        filesystem, _ = self._fs()
        return pads.dataset(self.parts(), filesystem=filesystem, format="parquet")

    def write_file(self, name: str, data: bytes) -> None:
        """Write a file into the folder atomically (local) or as one object."""
        filesystem, inner = self._fs()
        filesystem.create_dir(inner, recursive=True)
        _write_atomically(filesystem, inner, name, data)

    def done_ids(self) -> list[str]:
        """Ids of every row already written."""
        parts = self.parts()
        if not parts:
            return []
        filesystem, _ = self._fs()
        return pq.ParquetDataset(parts, filesystem=filesystem).read(columns=["id"]) \
            .column("id").to_pylist()

    def read_file(self, name: str) -> bytes | None:
        """A file of the folder, or None when it is not there."""
        filesystem, inner = self._fs()
        path = f"{inner}/{name}"
        if filesystem.get_file_info(path).type == fs.FileType.NotFound:
            return None
        with filesystem.open_input_stream(path) as f:
            return f.read()

    def read_run(self) -> dict[str, Any] | None:
        data = self.read_file(RUN_FILE)
        return None if data is None else json.loads(data)

    def write_run(self, run: dict[str, Any]) -> None:
        self.write_file(RUN_FILE, (json.dumps(run, indent=2) + "\n").encode())

    def clear(self) -> None:
        """Remove what earlier runs wrote (their part files, temporaries and run record)."""
        filesystem, _ = self._fs()
        for info in self._entries():
            name = info.base_name
            if name == RUN_FILE or name.startswith(TMP_PREFIX) or (
                    name.startswith(PART_PREFIX) and name.endswith(".parquet")):
                filesystem.delete_file(info.path)

    def check_run(self, job: str, payload: str, config_dump: dict[str, Any], *,
                  overwrite: bool, force: bool) -> dict[str, Any] | None:
        """Raise ResumeError unless this run may write here (reads only); the earlier
        run's record, if any."""
        previous = None if overwrite else self.read_run()
        if previous is None or force:
            return previous
        if previous["job"] != job:
            raise ResumeError(
                f"output {self.path} holds a '{previous['job']}' job, not '{job}'; use "
                "--overwrite to start fresh")
        settings = {**result_settings(config_dump), "payload": payload}
        diff = _differences(previous["settings"], settings)
        if diff:
            raise ResumeError(
                f"output {self.path} was written with another configuration (differs in: "
                f"{', '.join(diff)}); use --force to continue it anyway or --overwrite "
                "to start fresh")
        return previous

    def start_run(self, job: str, payload: str, config_dump: dict[str, Any], run_id: str, *,
                  overwrite: bool, force: bool) -> list[str]:
        """Check the folder can take this run, record it, and return the ids already done."""
        if overwrite:
            self.clear()
        previous = self.check_run(job, payload, config_dump, overwrite=False, force=force)
        settings = {**result_settings(config_dump), "payload": payload}
        for info in self._entries():  # temporaries of a run that was killed
            if info.base_name.startswith(TMP_PREFIX):
                self._fs()[0].delete_file(info.path)
        runs = (previous or {}).get("runs", [])
        runs.append({"run_id": run_id, "started": now()})
        self.write_run({"job": job, "payload": payload, "fingerprint": fingerprint(settings),
                        "settings": settings, "config": config_dump, "runs": runs})
        return self.done_ids()

    def finish_run(self, run_id: str, rows_written: int) -> None:
        run = self.read_run() or {}
        for entry in run.get("runs", []):
            if entry["run_id"] == run_id:
                entry |= {"finished": now(), "rows_written": rows_written}
        self.write_run(run)


def now() -> str:
    """The time now (UTC, ISO 8601), as run records give it."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _write_atomically(filesystem: fs.FileSystem, folder: str, name: str, data: bytes) -> None:
    if isinstance(filesystem, fs.LocalFileSystem):
        tmp = f"{folder}/{TMP_PREFIX}{uuid.uuid4().hex}-{name}"
        with filesystem.open_output_stream(tmp) as f:
            f.write(data)
        filesystem.move(tmp, f"{folder}/{name}")
    else:  # object stores publish an object only once its upload completes
        with filesystem.open_output_stream(f"{folder}/{name}") as f:
            f.write(data)


def write_part(batch: pa.Table, *, output: str, run_id: str, row_group_rows: int,
               retry: storage.RetryPolicy) -> pa.Table:
    """Ray Data task: write one batch as one part file; returns (file, rows)."""
    filesystem, folder = storage.filesystem(output, retry)
    name = f"{PART_PREFIX}{run_id}-{uuid.uuid4().hex[:12]}.parquet"
    sink = pa.BufferOutputStream()
    pq.write_table(batch, sink, compression="zstd", row_group_size=row_group_rows)
    _write_atomically(filesystem, folder, name, sink.getvalue().to_pybytes())
    return pa.table({"file": [name], "rows": [batch.num_rows]})
