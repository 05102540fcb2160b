"""Measure nbflow against the raw-I/O limit and plain pickle, in one run on this machine.

    python benchmarks/run.py [--size-mb 256] [--repeat 3] [--steps 200]

Prints medians and ratios; never asserts a time (machines are shared and noisy).
Workloads: checkpoint and restore of one large float64 array by the step engine,
against a raw file write/read and pickle protocol 5; the fixed overhead of a tiny
step (miss and hit) through a real IPython shell; and the time to import nbflow.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def median_time(action: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def shell_in(directory: Path):  # type: ignore[no-untyped-def]
    from IPython.core.interactiveshell import InteractiveShell

    from nbflow._session import Session, set_session

    os.environ["NBFLOW_DIR"] = str(directory)
    set_session(Session())
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_cell("%load_ext nbflow", silent=True)
    return shell


def quietly(shell, code: str) -> None:  # type: ignore[no-untyped-def]
    with contextlib.redirect_stdout(io.StringIO()):
        shell.run_cell(code, silent=True)


def array_workload(size_mb: int, repeat: int, scratch: Path) -> list[tuple[str, float, float]]:
    import numpy as np

    from nbflow._config import Config
    from nbflow._engine import NO_RESULT, Engine, StepOptions
    from nbflow._session import Session

    array = np.random.default_rng(0).random(size_mb * 1024 * 1024 // 8)
    raw = scratch / "raw.bin"
    pickled = scratch / "array.pkl"
    # New files each time, as a checkpoint writes new files.
    names = iter(range(1_000_000))
    # os.sync before each write: every writer starts with no dirty pages to flush.
    raw_write = median_time(lambda: (scratch / f"raw-{next(names)}.bin").write_bytes(memoryview(array).cast("B")), repeat, setup=os.sync)
    raw.write_bytes(memoryview(array).cast("B"))
    raw_read = median_time(lambda: np.fromfile(raw), repeat)
    pickle_write = median_time(
        lambda: (scratch / f"pickle-{next(names)}.pkl").write_bytes(pickle.dumps(array, protocol=5)), repeat, setup=os.sync
    )
    pickled.write_bytes(pickle.dumps(array, protocol=5))
    pickle_read = median_time(lambda: pickle.loads(pickled.read_bytes()), repeat)

    # A fresh cache each time: equal content would otherwise be found already saved.
    engines = iter(Engine(Session(Config(dir=str(scratch / f"cache-{index}")))) for index in range(repeat + 1))
    engine = next(engines)

    def save() -> None:
        engine.save(
            "big",
            kind="cell",
            code_hash="h",
            source="",
            inputs={},
            outputs={"array": array},
            aliases={},
            deleted=[],
            result=NO_RESULT,
            events=[],
            started_at=0.0,
            duration=0.0,
            options=StepOptions(),
        )

    def next_engine() -> None:
        nonlocal engine
        engine = next(engines)
        engine.session.store.list_records()  # open the store outside the timing
        os.sync()

    saved = median_time(save, repeat, setup=next_engine)
    record = engine.load("big")
    assert record is not None
    restored = median_time(lambda: engine.restore(record), repeat)
    return [
        (f"checkpoint a {size_mb} MB array", saved, raw_write),
        ("  pickle.dumps + write (peer)", pickle_write, raw_write),
        (f"restore a {size_mb} MB array", restored, raw_read),
        ("  read + pickle.loads (peer)", pickle_read, raw_read),
    ]


def overhead_workload(steps: int, scratch: Path) -> list[tuple[str, float, float]]:
    shell = shell_in(scratch / "cache-overhead")
    for index in range(1000):
        shell.user_ns[f"var{index}"] = index
    plain = median_time(lambda: quietly(shell, "x = 1"), 50)
    start = time.perf_counter()
    for index in range(steps):
        quietly(shell, f"%%step tiny{index}\nx{index} = {index}")
    miss = (time.perf_counter() - start) / steps
    start = time.perf_counter()
    for index in range(steps):
        quietly(shell, f"%%step tiny{index}\nx{index} = {index}")
    hit = (time.perf_counter() - start) / steps
    return [
        ("tiny step, miss (1,000 variables in the namespace)", miss, plain),
        ("tiny step, hit", hit, plain),
    ]


def import_workload(repeat: int) -> list[tuple[str, float, float]]:
    def timed(code: str) -> float:
        return median_time(lambda: subprocess.run([sys.executable, "-c", code], check=True), repeat)

    baseline = timed("import IPython, diskcache, cloudpickle")
    return [("import nbflow (process start included)", timed("import nbflow"), baseline)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256, help="size of the large array (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown (default 3)")
    parser.add_argument("--steps", type=int, default=200, help="tiny steps for the overhead workload (default 200)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nbflow-bench-") as folder:
        scratch = Path(folder)
        rows = array_workload(options.size_mb, options.repeat, scratch)
        rows += overhead_workload(options.steps, scratch)
        rows += import_workload(options.repeat)
    print(f"{'workload':<52} {'median':>10} {'baseline':>10} {'ratio':>7}")
    for name, value, baseline in rows:
        print(f"{name:<52} {value * 1000:>8.1f}ms {baseline * 1000:>8.1f}ms {value / baseline:>6.2f}x")
    print("baselines: raw file write/read of the same bytes; a plain cell `x = 1`; importing IPython + diskcache + cloudpickle")


if __name__ == "__main__":
    main()
