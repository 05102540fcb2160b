"""Measure nbflow against the raw-I/O limit and its peers, in one process tree on this machine.

    python benchmarks/run.py [--quick] [--repeat 3] [--out benchmarks/results.md]

Workloads (issue 5):
  W1  one 1 GiB float64 array: save, restore (warm), restore cold, mmap restore
  W2  a 10-million-row, 6-column DataFrame (ints, floats, a categorical)
  W3  a dict of 1,000,000 str -> tuple entries (pickle-bound)
  W4  20 variables (~500 MB), then a step changing one small variable: that
      second checkpoint's time and bytes, then resume in a fresh process
  W5  1,000 tiny steps (overhead per miss and per hit), and `import nbflow`
  A   a 10-step analysis after a restart: resume and re-running cells, against re-running it
Peers: a raw file write/read of the same bytes, pickle protocol 5, cloudpickle,
joblib.dump/load and joblib.Memory. Each figure is the median of --repeat runs;
ratios compare figures of the same run. "Cold" reads evict the files from the
page cache first (posix_fadvise). Prints a table and writes it as markdown.
Tests never assert times: timings live here only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import mmap
import os
import pickle
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3


@dataclass
class Row:
    workload: str
    operation: str
    seconds: float
    baseline: float | None = None
    baseline_name: str = ""
    target: float | None = None
    note: str = ""
    limit: float | None = None
    """An absolute target (seconds, or bytes for a bytes row), where a ratio is not the measure."""

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.seconds / self.baseline

    @property
    def verdict(self) -> str:
        if self.limit is not None:
            return "met" if self.seconds <= self.limit else "NOT met"
        if self.target is None or self.ratio is None:
            return ""
        return "met" if self.ratio <= self.target else "NOT met"


SLOW = 8.0
"""Seconds after which a measurement stops repeating (joblib on W3 takes 7 s a run): the full run stays short."""


def median_time(action: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None) -> float:
    times: list[float] = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
        if sum(times) > SLOW:
            break
    return statistics.median(times)


def evict(*paths: Path) -> None:
    """Drop files from the page cache (after writing back dirty pages), so the next read hits the disk."""
    os.sync()
    for root in paths:
        files = [root] if root.is_file() else [path for path in root.rglob("*") if path.is_file()]
        for path in files:
            descriptor = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(descriptor)


def read_fresh(path: Path) -> Any:
    """The raw-read limit: the file's bytes into freshly allocated memory."""
    import numpy as np

    with open(path, "rb", buffering=0) as file:
        data = np.empty(os.fstat(file.fileno()).st_size, dtype=np.uint8)
        file.readinto(data)
    return data


def read_mapped(path: Path) -> memoryview:
    """The same read into a private anonymous map with huge pages (how nbflow allocates): a stricter limit."""
    with open(path, "rb", buffering=0) as file:
        size = os.fstat(file.fileno()).st_size
        memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        memory.madvise(mmap.MADV_HUGEPAGE)
        file.readinto(memory)
    return memoryview(memory)


def write_raw(path: Path, data: Any) -> None:
    with open(path, "wb") as file:
        file.write(memoryview(data).cast("B"))


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


class Scratch:
    """Fresh file names under one scratch directory; files of a finished measurement are deleted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def path(self, name: str) -> Path:
        self.count += 1
        return self.root / f"{self.count}-{name}"

    def clean(self, *keep: Path) -> None:
        for item in self.root.iterdir():
            if item not in keep:
                shutil.rmtree(item) if item.is_dir() else item.unlink()


def nbflow_engine(directory: Path) -> Any:
    from nbflow._config import Config
    from nbflow._engine import Engine
    from nbflow._session import Session

    engine = Engine(Session(Config(dir=str(directory))))
    engine.session.store.list_records()  # open the store outside the timings
    return engine


def engine_save(engine: Any, value: object) -> None:
    from nbflow._engine import StepOptions

    report = engine.save_return(
        "value", value, code_hash="bench", source="", inputs={}, started_at=0.0, duration=0.0, options=StepOptions()
    )
    assert report.ok, report


def value_workload(name: str, value: object, args: argparse.Namespace, scratch: Scratch, *, raw: Any, arrays: bool) -> list[Row]:
    """Save and restore one value with nbflow and every peer; ratios against raw I/O of the same bytes."""
    import cloudpickle
    import joblib

    repeat = args.repeat
    rows: list[Row] = []
    saved: dict[str, Path] = {}

    def measure_save(label: str, write: Callable[[Path], object], *, directory: bool = False) -> float:
        def setup() -> None:
            scratch.clean(*saved.values())
            os.sync()
            target["path"] = scratch.path(label)
            if directory:
                target["path"].mkdir()

        target: dict[str, Path] = {}
        seconds = median_time(lambda: write(target["path"]), repeat, setup)
        saved[label] = target["path"]
        return seconds

    def pickle_write(module: Any) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            with open(path, "wb") as file:
                module.dump(value, file, protocol=5)

        return write

    def pickle_read(module: Any, path: Path) -> Callable[[], object]:
        def read() -> object:
            with open(path, "rb") as file:
                return module.load(file)

        return read

    engines: dict[Path, Any] = {}

    def nbflow_write(path: Path) -> None:
        engine = engines.setdefault(path, nbflow_engine(path))
        engine_save(engine, value)

    def memory_write(path: Path) -> None:
        memory = joblib.Memory(str(path), verbose=0)
        produce = memory.cache(_produce)
        _VALUE[0] = value
        produce(name)

    writes: dict[str, tuple[Callable[[Path], object], bool]] = {
        "raw": (lambda path: write_raw(path, raw), False),
        "nbflow": (nbflow_write, True),
        "pickle": (pickle_write(pickle), False),
        "cloudpickle": (pickle_write(cloudpickle), False),
        "joblib": (lambda path: joblib.dump(value, path), False),
        "joblib.Memory": (memory_write, True),
    }
    if raw is None:
        del writes["raw"]
    save_times = {label: measure_save(label, write, directory=directory) for label, (write, directory) in writes.items()}
    if raw is None:
        # The raw limit for a value with no single buffer: the bytes nbflow wrote for it.
        nbflow_blob = max((path for path in saved["nbflow"].rglob("*") if path.is_file()), key=lambda path: path.stat().st_size)
        same_bytes = read_fresh(nbflow_blob)
        writes = {"raw": (lambda path: write_raw(path, same_bytes), False), **writes}
        save_times["raw"] = measure_save("raw", writes["raw"][0])
        del same_bytes
    engine = engines[saved["nbflow"]]
    record = engine.load("value")

    def memory_read() -> object:
        _VALUE[0] = None
        return joblib.Memory(str(saved["joblib.Memory"]), verbose=0).cache(_produce)(name)

    reads: dict[str, Callable[[], object]] = {
        "raw": lambda: read_fresh(saved["raw"]),
        "raw (huge-page map)": lambda: read_mapped(saved["raw"]),
        "nbflow": lambda: engine.restore(record),
        "pickle": pickle_read(pickle, saved["pickle"]),
        "cloudpickle": pickle_read(cloudpickle, saved["cloudpickle"]),
        "joblib": lambda: joblib.load(saved["joblib"]),
        "joblib.Memory": memory_read,
    }
    read_times = {}
    for label, read in reads.items():
        read()  # warm: the file in the page cache, the code paths loaded
        read_times[label] = median_time(read, repeat)
    cold_times = {}
    if args.cold:
        for label, read in reads.items():
            source = saved[label.split()[0]]
            cold_times[label] = median_time(read, repeat, setup=lambda source=source: evict(source))
    mmap_times = {}
    if arrays:
        import numpy as np

        mmap_times = {
            "raw": median_time(lambda: np.memmap(saved["raw"], mode="c"), repeat),
            "nbflow": median_time(lambda: engine.restore(record, mmap=True), repeat),
            "joblib": median_time(lambda: joblib.load(saved["joblib"], mmap_mode="c"), repeat),
        }
    size = tree_size(saved["raw"])
    baseline = "cloudpickle" if raw is None and not arrays else "raw"
    note = f"{size / 1e6:.0f} MB"
    targets = TARGETS.get(name, {})
    for label in writes:
        target = targets.get("save") if label == "nbflow" else None
        rows.append(Row(name, f"save: {label}", save_times[label], save_times[baseline], baseline, target, note))
    for label in reads:
        target = targets.get("restore") if label == "nbflow" else None
        rows.append(Row(name, f"restore: {label}", read_times[label], read_times[baseline], baseline, target, note))
    for label, seconds in cold_times.items():
        rows.append(Row(name, f"restore cold: {label}", seconds, cold_times[baseline], baseline, None, note))
    for label, seconds in mmap_times.items():
        rows.append(Row(name, f"mmap restore: {label}", seconds, mmap_times["raw"], "raw np.memmap", None, note))
    scratch.clean()
    return rows


_VALUE: list[object] = [None]


def _produce(_name: str) -> object:
    """What joblib.Memory caches: the value under test (the call itself costs nothing)."""
    return _VALUE[0]


TARGETS: dict[str, dict[str, float]] = {
    "W1": {"save": 1.5, "restore": 1.5},
    "W2": {"restore": 1.0},
    "W3": {"save": 1.1, "restore": 1.1},
}


def w1(args: argparse.Namespace, scratch: Scratch) -> list[Row]:
    import numpy as np

    array = np.random.default_rng(0).random(args.w1_bytes // 8)
    return value_workload("W1", array, args, scratch, raw=array, arrays=True)


def dataframe(rows: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "quantity": rng.integers(0, 1000, rows, dtype="int32"),
            "price": rng.random(rows),
            "score": rng.random(rows, dtype="float32"),
            "weight": rng.normal(size=rows),
            "region": pd.Categorical.from_codes(rng.integers(0, 5, rows), ["north", "south", "east", "west", "centre"]),
        }
    )


def w2(args: argparse.Namespace, scratch: Scratch) -> list[Row]:
    return value_workload("W2", dataframe(args.w2_rows), args, scratch, raw=None, arrays=True)


def w3(args: argparse.Namespace, scratch: Scratch) -> list[Row]:
    value = {f"key-{index:08d}": (index, index * 0.5, f"v{index % 97}") for index in range(args.w3_entries)}
    return value_workload("W3", value, args, scratch, raw=None, arrays=False)


SHELL = """
import contextlib, io, json, os, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
def cell(code):
    with contextlib.redirect_stdout(io.StringIO()):
        result = shell.run_cell(code, silent=True)
    if not result.success:
        raise SystemExit(f"cell failed: {result.error_in_exec or result.error_before_exec}: {code[:200]}")
def timed(code):
    start = time.perf_counter(); cell(code); return time.perf_counter() - start
cell("%load_ext nbflow")
"""


def child(code: str, cache: Path) -> dict[str, Any]:
    """Run ``code`` (after `SHELL`) in a fresh Python process; it prints one JSON object last."""
    environment = {**os.environ, "NBFLOW_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", SHELL + textwrap.dedent(code)], env=environment, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stdout + done.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


W4_BUILD = """%%step build
import numpy as np
rng = np.random.default_rng(4)
{arrays}
params = {{"alpha": 1, "beta": 2}}
label = "experiment"
count = 20
offsets = [1, 2, 3]
"""
W4_TWEAK = '%%step tweak\nparams["alpha"] += 1'


def w4(args: argparse.Namespace, scratch: Scratch) -> list[Row]:
    per_array = args.w4_bytes // 16 // 8
    build = W4_BUILD.format(arrays="\n".join(f"a{index} = rng.random({per_array})" for index in range(16)))
    rows = []
    seconds, written, restored, raw = [], [], [], []
    for _ in range(args.repeat):
        cache = scratch.path("w4-cache")
        first = child(
            f"""
            cell({build!r})
            os.sync()
            sizes = {{}}
            from nbflow._session import get_session
            store = get_session().store
            before = set(store.list_blobs())
            elapsed = timed({W4_TWEAK!r})
            record = json.loads(store.load_record("tweak"))
            new = [blob for blob in store.list_blobs() if blob not in before]
            written = len(json.dumps(record)) + sum(len(bytes(store.load_blob(blob))) for blob in new)
            if record.get("version"):  # the version the step made: a small record of its own
                written += len(store.load_record("__version__:" + record["version"]))
            changed = sum(meta["size"] for meta in record["outputs"].values())
            print(json.dumps({{"tweak": elapsed, "written": written, "changed": changed}}))
            """,
            cache,
        )
        seconds.append(first["tweak"])
        written.append(first["written"])
        changed = first["changed"]
        os.sync()
        second = child(
            """
            start = time.perf_counter(); cell("%nbflow resume"); elapsed = time.perf_counter() - start
            assert shell.user_ns["params"]["alpha"] == 2 and "a15" in shell.user_ns
            print(json.dumps({"resume": elapsed}))
            """,
            cache,
        )
        restored.append(second["resume"])
        blobs = [str(path) for path in (cache / "blobs").rglob("*") if path.is_file()]
        reader = (
            f"import sys, time\nsys.path.insert(0, {str(Path(__file__).parent)!r})\nfrom run import read_fresh\nfrom pathlib import Path\n"
            f"start = time.perf_counter()\nfor path in {blobs!r}: read_fresh(Path(path))\nprint(time.perf_counter() - start)"
        )
        third = subprocess.run([sys.executable, "-c", reader], capture_output=True, text=True, check=True)
        raw.append(float(third.stdout))
        size = tree_size(cache / "blobs")
        scratch.clean()
    note = f"{size / 1e6:.0f} MB in 20 variables"
    rows.append(
        Row(
            "W4", "second checkpoint (one small variable changed)", statistics.median(seconds), note=note + "; target <= 0.15 s", limit=0.15
        )
    )
    bytes_note = f"step record, version record and new blobs; the changed variable is {changed} B; target <= 2 KB + that"
    rows.append(Row("W4", "bytes written by that checkpoint", statistics.median(written), note=bytes_note, limit=2048 + changed))
    rows.append(
        Row("W4", "resume in a fresh process", statistics.median(restored), statistics.median(raw), "raw read (fresh process)", 2.0, note)
    )
    return rows


def w5(args: argparse.Namespace, scratch: Scratch) -> list[Row]:
    steps = args.w5_steps
    result = child(
        f"""
        for index in range(1000):
            shell.user_ns[f"var{{index}}"] = index
        plain = sorted(timed("x = 1") for _ in range(200))[100]
        miss = sum(timed(f"%%step tiny{{index}}\\nx{{index}} = var{{index % 1000}} + 1") for index in range({steps})) / {steps}
        hit = sum(timed(f"%%step tiny{{index}}\\nx{{index}} = var{{index % 1000}} + 1") for index in range({steps})) / {steps}
        print(json.dumps({{"plain": plain, "miss": miss, "hit": hit}}))
        """,
        scratch.path("w5-cache"),
    )
    operation = f"tiny step, {{}}: overhead over a plain cell ({steps} steps, 1,000 variables)"
    rows = [
        Row("W5", operation.format("miss"), result["miss"] - result["plain"], note="target < 10 ms", limit=0.010),
        Row("W5", operation.format("hit"), result["hit"] - result["plain"], note="target < 10 ms", limit=0.010),
    ]

    def import_time(code: str) -> float:
        return median_time(lambda: subprocess.run([sys.executable, "-c", code], check=True), max(args.repeat, 7))

    nothing = import_time("pass")
    baseline = import_time("import IPython, diskcache, cloudpickle") - nothing
    ours = import_time("import nbflow") - nothing
    imports = "IPython+diskcache+cloudpickle"
    rows.append(
        Row(
            "W5",
            "import nbflow (interpreter start subtracted)",
            ours,
            baseline,
            imports,
            note="target: baseline + 30 ms",
            limit=baseline + 0.030,
        )
    )
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys, nbflow; print(sorted({'numpy', 'pandas', 'ipywidgets'} & set(sys.modules)))"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rows[-1].note += f"; heavy modules imported: {heavy.stdout.strip()}"
    scratch.clean()
    return rows


ANALYSIS = [
    "import numpy as np\nrng = np.random.default_rng(0)\nraw = rng.normal(size=({n}, 8))",
    "clean = raw[np.isfinite(raw).all(axis=1)]\nclean = clean - clean.mean(axis=0)",
    "cov = np.cov(clean, rowvar=False)\nfor _ in range(3): cov = np.cov(clean @ cov, rowvar=False)",
    "features = np.concatenate([clean, clean ** 2, np.sin(clean)], axis=1)",
    "sorted_features = np.sort(features, axis=0)",
    "quantiles = sorted_features[:: max(1, len(sorted_features) // 100)]",
    "weights = np.linalg.lstsq(features[:200_000], clean[:200_000, 0], rcond=None)[0]",
    "pred = features @ weights",
    "residual = clean[:, 0] - pred\nscore = float((residual ** 2).mean())",
    "summary = {'score': score, 'n': len(clean), 'q': quantiles.shape}",
]


def analysis(args: argparse.Namespace, scratch: Scratch) -> list[Row]:
    cells = [f"%%step s{index}\n" + code.replace("{n}", str(args.analysis_rows)) for index, code in enumerate(ANALYSIS)]
    plain = [code.replace("{n}", str(args.analysis_rows)) for code in ANALYSIS]
    cache = scratch.path("analysis-cache")
    first = child(f"print(json.dumps({{'run': sum(timed(code) for code in {cells!r})}}))", cache)
    rerun = child(f"print(json.dumps({{'run': sum(timed(code) for code in {plain!r})}}))", scratch.path("unused"))
    os.sync()
    resumed = child("print(json.dumps({'run': timed('%nbflow resume')}))", cache)
    replayed = child(f"print(json.dumps({{'run': sum(timed(code) for code in {cells!r})}}))", cache)
    size = tree_size(cache / "blobs")
    scratch.clean()
    note = f"{size / 1e6:.0f} MB of checkpoints"
    return [
        Row("A", "10 steps, first run (executes and checkpoints)", first["run"], rerun["run"], "re-running without nbflow", None, note),
        Row("A", "after a restart: %nbflow resume", resumed["run"], rerun["run"], "re-running without nbflow", None, note),
        Row(
            "A",
            "after a restart: run the 10 cells again (all hits)",
            replayed["run"],
            rerun["run"],
            "re-running without nbflow",
            None,
            note,
        ),
    ]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    memory = ""
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as info:
        memory = f"{int(info.readline().split()[1]) / 1024**2:.0f} GiB RAM"
    disk = shutil.disk_usage(tempfile.gettempdir())
    import cloudpickle
    import joblib
    import numpy
    import pandas

    versions = ", ".join(f"{module.__name__} {module.__version__}" for module in (numpy, pandas, cloudpickle, joblib))
    system = f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, {memory}, scratch disk {disk.total / 1e9:.0f} GB"
    return f"{system}; Python {platform.python_version()}, {versions}"


def render(rows: list[Row]) -> list[str]:
    lines = ["| workload | operation | median | baseline | ratio | target | |", "|---|---|---:|---|---:|---:|---|"]
    for row in rows:
        value = f"{row.seconds:,.0f} B" if "bytes" in row.operation else f"{row.seconds * 1000:,.1f} ms"
        baseline = f"{row.baseline_name} {row.baseline * 1000:,.1f} ms" if row.baseline else ""
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else ""
        target = f"<= {row.target}x" if row.target else ""
        if row.limit is not None:
            target = f"<= {row.limit:,.0f} B" if "bytes" in row.operation else f"<= {row.limit * 1000:,.1f} ms"
        lines.append(f"| {row.workload} | {row.operation} ({row.note}) | {value} | {baseline} | {ratio} | {target} | {row.verdict} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, a minute or two: to check the script, not for figures")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown (default 3)")
    parser.add_argument("--only", default="W1,W2,W3,W4,W5,A", help="comma-separated workloads to run (default: all)")
    parser.add_argument("--no-cold", dest="cold", action="store_false", help="skip the cold-cache restores")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results.md", help="markdown output (default benchmarks/results.md)"
    )
    args = parser.parse_args()
    full = not args.quick
    args.w1_bytes = GIB if full else 64 * 1024**2
    args.w2_rows = 10_000_000 if full else 500_000
    args.w3_entries = 1_000_000 if full else 50_000
    args.w4_bytes = 500 * 1000**2 if full else 40 * 1000**2
    args.w5_steps = 1000 if full else 100
    args.analysis_rows = 2_000_000 if full else 200_000
    workloads = {"W1": w1, "W2": w2, "W3": w3, "W4": w4, "W5": w5, "A": analysis}
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="nbflow-bench-", dir=os.environ.get("NBFLOW_BENCH_DIR")) as folder:
        scratch = Scratch(Path(folder))
        for name in args.only.split(","):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows += workloads[name](args, scratch)
    method = (
        "Medians of the runs; every ratio compares two figures of this same run. `raw` is a plain file write, or a read "
        "into freshly allocated memory, of the same bytes. Cold restores evict the files from the page cache first. "
        "Save times stop when the data is in the page cache (no fsync), for every contender; "
        f"a measurement whose runs pass {SLOW:.0f} s in all stops repeating (the slow peers on W3)."
    )
    command = f"python benchmarks/run.py{' --quick' if args.quick else ''} --repeat {args.repeat}"
    write_results(args.out, "nbflow benchmark results", command, started, method, rows)


def write_results(out: Path, title: str, command: str, started: float, method: str, rows: list[Row]) -> None:
    """Print the table, and write it to ``out`` as markdown under a header naming the command, the time and the machine."""
    table = render(rows)
    print("\n".join(table))
    when = f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {time.perf_counter() - started:.0f} s in all."
    header = [f"# {title}", "", f"`{command}`, {when}", "", f"Machine: {machine()}.", "", method, ""]
    out.write_text("\n".join(header + table) + "\n")
    print(f"written to {out}", file=sys.stderr)

if __name__ == "__main__":
    main()
