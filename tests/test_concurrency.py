"""Several processes writing steps to one cache directory at once lose nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nbflow import DiskStore
from nbflow._config import Config
from nbflow._engine import Engine
from nbflow._session import Session

WRITER = """
import sys
import numpy as np
from nbflow import step

worker, count = sys.argv[1], int(sys.argv[2])

@step(key="w{worker}:{index}")
def produce(worker, index):
    small = {"worker": worker, "index": index}
    large = np.full(40_000, index, dtype="float64")  # 320 kB: a file blob of its own
    shared = np.arange(50_000)                        # identical in every process: same blob
    return small, large, shared

for index in range(count):
    produce(worker, index)
print("done", worker)
"""


@pytest.mark.stress
def test_two_processes_writing_one_cache_lose_nothing(tmp_path):
    cache = tmp_path / "shared-cache"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    count = 40
    env = {"NBFLOW_DIR": str(cache), "PATH": "/usr/bin:/bin"}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), name, str(count)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in ("a", "b")
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        assert "NbflowWarning" not in err, err

    engine = Engine(Session(Config(dir=str(cache))))
    records = {record["key"]: record for record in engine.session.records()}
    assert set(records) == {f"w{name}:{index}" for name in "ab" for index in range(count)}
    for key, record in records.items():
        assert record["state"] == "completed"
        small, large, shared = engine.restore(record).values["return"]
        worker, index = key[1], int(key.split(":")[1])
        assert small == {"worker": worker, "index": index}
        assert large.shape == (40_000,) and (large == index).all()
        assert (shared == list(range(50_000))).all()
    assert not [path for path in (cache / "blobs").rglob(".*.tmp")], "no temporary files left behind"
    DiskStore(cache).close()
