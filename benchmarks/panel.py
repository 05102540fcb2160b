"""How fast the panel is with 1,000 steps and 10,000 versions, against reading the same cache as text tables.

    python benchmarks/panel.py [--steps 1000] [--versions 10000] [--repeat 5] [--out benchmarks/panel_results.md]

The cache is built first (real step records through the engine; versions as a
tree with a branch every 50 versions). Then, in a fresh process (so nothing is
cached in memory), as after a kernel restart:
  build     `nbflow.panel()` the first time, then again
  baseline  `str(nbflow.status())` + `str(nbflow.versions())`: the text tables of the same steps and versions
  live      one step event applied to the panel (row update + page render), and the refresh after a cell
  pages     next page of steps, of versions
  resume    the Resume button (restores all 1,000 steps) against `%nbflow resume`
  html      the bytes of one rendered page against the full HTML tables
Tests never assert times: timings live here only.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Row, child, write_results  # noqa: E402


def build_cache(directory: Path, steps: int, versions: int) -> None:
    """``steps`` completed step records, each reading the one before, and ``versions`` versions over their values."""
    from nbflow._config import Config
    from nbflow._engine import NO_RESULT, Engine, StepOptions
    from nbflow._serialization import fingerprint
    from nbflow._session import Session
    from nbflow._versions import Version, allocate, entry_of

    engine = Engine(Session(Config(dir=str(directory))))
    records = []
    for index in range(steps):
        value = list(range(index % 50 + 1))
        report = engine.save(
            f"step{index:04}",
            kind="cell",
            code_hash=f"code{index}",
            source=f"x{index:04} = list(range({index % 50 + 1}))",
            inputs={} if index == 0 else {f"x{index - 1:04}": fingerprint(list(range((index - 1) % 50 + 1)))},
            outputs={f"x{index:04}": value},
            aliases={},
            deleted=[],
            result=NO_RESULT,
            events=[],
            started_at=time.time(),
            duration=0.5,
            options=StepOptions(),
        )
        assert report.ok and report.record is not None, report
        records.append(report.record)
    store = engine.session.store
    parent: str | None = None
    for number in range(1, versions + 1):
        record = records[number % steps]
        name, meta = next(iter(record["outputs"].items()))
        if number % 50 == 0 and parent is not None:
            parent = f"v{max(1, number - 25)}"  # a branch from an older version
        draft = Version(
            id="v0",
            parent=parent,
            step=record["key"],
            created_at=time.time(),
            changes={name: entry_of(meta)},
            removed=[],
            added=[name],
            changed=[],
            bytes_added=int(meta.get("size") or 0),
        )
        parent = allocate(store, draft, number).id
    engine.session.close()


MEASURE = """
import nbflow
from nbflow._session import get_session

def clock(action, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter(); action(); times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]

result = {{}}
start = time.perf_counter(); panel = nbflow.panel(); result["cold"] = time.perf_counter() - start
result["warm"] = clock(lambda: nbflow.panel().close(), {repeat})
result["tables"] = clock(lambda: (str(nbflow.status()), str(nbflow.versions())), {repeat})
result["snapshot"] = clock(nbflow.snapshot, {repeat})
result["steps_page"] = clock(lambda: panel.steps_pager.go(panel.steps_pager.page + 1), {repeat} * 4)
result["versions_page"] = clock(lambda: panel.versions_pager.go(panel.versions_pager.page - 1), {repeat} * 4)
result["page_html"] = len(panel.steps_html.value.encode()) + len(panel.versions_html.value.encode())
result["full_html"] = len(nbflow.status()._repr_html_().encode()) + len(nbflow.versions()._repr_html_().encode())
events = []
unsubscribe = nbflow.subscribe(events.append)
cell("%%step extra\\nextra = 1")
unsubscribe()
completed = [event for event in events if event.kind == "step_completed"][0]
result["event"] = clock(lambda: panel._on_event(completed), {repeat} * 4)
result["after_cell"] = clock(panel.refresh, {repeat})
result["resume_click"] = clock(panel.resume_button.click, {repeat})
assert "resumed {steps}" in panel.message_text or "resumed" in panel.message_text, panel.message_text
result["resume_magic"] = clock(lambda: cell("%nbflow resume"), {repeat})
result["refresh_full_namespace"] = clock(panel.refresh, {repeat})
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median is shown (default 5)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "panel_results.md")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nbflow-panel-bench-") as folder:
        cache = Path(folder) / "cache"
        print(f"building a cache of {args.steps} steps and {args.versions} versions ...", file=sys.stderr, flush=True)
        build_cache(cache, args.steps, args.versions)
        print("measuring in a fresh process ...", file=sys.stderr, flush=True)
        result = child(MEASURE.format(repeat=args.repeat, steps=args.steps), cache)
    size = f"{args.steps:,} steps, {args.versions:,} versions"
    tables, baseline = result["tables"], "status + versions tables"
    rows = [
        Row("P", f"build the panel, first in the process ({size})", result["cold"], tables, baseline, None, "versions read from disk", 1.0),
        Row("P", f"build the panel again ({size})", result["warm"], tables, baseline, None, "version records cached", 0.5),
        Row("P", f"snapshot() ({size})", result["snapshot"], tables, baseline, None, "for comparison"),
        Row("P", "one step event: update its row, render its page", result["event"], None, "", None, "live update", 0.02),
        Row("P", "refresh after a cell that ran a step", result["after_cell"], tables, baseline, None, "empty namespace", 0.5),
        Row("P", "refresh after Resume", result["refresh_full_namespace"], tables, baseline, None,
            f"all {args.steps:,} step values in the namespace: stale checks hash them", 0.5),
        Row("P", "next page of steps", result["steps_page"], None, "", None, "25 rows", 0.05),
        Row("P", "previous page of versions", result["versions_page"], None, "", None, "25 rows", 0.05),
        Row("P", f"Resume button ({args.steps:,} steps restored)", result["resume_click"], result["resume_magic"], "%nbflow resume",
            None, "restore, then refresh the panel"),
        Row("P", "bytes of HTML sent for one page of steps and of versions", result["page_html"], None, "", None,
            f"the full tables are {result['full_html']:,} B", 100_000),
    ]  # fmt: skip
    method = (
        "Medians of the runs, measured in a fresh process after the cache was built (as after a kernel restart). "
        "The baseline is reading the same steps and versions as the text tables of `%nbflow status` and `%nbflow versions`. "
        "The panel renders one page (25 rows) of steps and of versions; the rest is paged."
    )
    command = f"python benchmarks/panel.py --steps {args.steps} --versions {args.versions} --repeat {args.repeat}"
    write_results(args.out, "nbflow panel benchmark", command, started, method, rows)

if __name__ == "__main__":
    main()
