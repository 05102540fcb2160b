"""Show what nbflow saves you: run a notebook, restart the kernel, run it again.

    python scripts/demo.py [NOTEBOOK] [--keep]

Executes NOTEBOOK (default: notebooks/quickstart.ipynb) headless with nbclient,
in a scratch copy with a fresh cache (``NBFLOW_DIR`` in a temporary folder, so
the repository is never touched); restarts the kernel; executes it again in
the same cache; then prints, for every step, how long its cell took in each run
and the speedup. Cell times come from nbclient's execution timestamps
(``iopub.execute_input`` to ``shell.execute_reply``), so they include saving
and restoring checkpoints.

Exit status: 0 when every step was restored in the second run, 1 when a step
executed again (its status line says "ran in", or its checkpoint was rewritten),
2 when a cell failed.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbclient.util import run_sync

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATUS = re.compile(r"^\[nbflow\] (\S+): (ran in|restored) ", re.M)


@dataclass
class Row:
    """One step cell (or @step calls made by one cell), timed in both runs."""

    label: str
    index: int
    keys: list[str]
    first: float = 0.0
    second: float = 0.0
    again: list[str] = field(default_factory=list)  # keys that executed in the second run


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """Kernel-side duration of a cell: execute_input to execute_reply."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def cell_window(cell: nbformat.NotebookNode) -> tuple[float, float]:
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return (0.0, -1.0)
    return datetime.fromisoformat(start).timestamp(), datetime.fromisoformat(end).timestamp()


def status_lines(cell: nbformat.NotebookNode) -> list[tuple[str, str]]:
    text = "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("name") == "stdout")
    return STATUS.findall(text)


def checkpoints(cache: Path) -> dict[str, dict]:
    """Every step record in the cache, by key."""
    from nbflow import Config
    from nbflow._session import Session

    session = Session(Config(dir=str(cache)))
    try:
        return {record["key"]: record for record in session.records()}
    finally:
        session.close()


def run_all(client: NotebookClient, nb: nbformat.NotebookNode) -> float:
    """Execute every code cell of ``nb`` in the client's kernel; returns the wall time."""
    client.nb = nb
    started = time.perf_counter()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            client.execute_cell(cell, index)
    return time.perf_counter() - started


def seconds(value: float) -> str:
    return f"{value:.2f}s" if value < 100 else f"{value:.0f}s"


def speedup(first: float, second: float) -> str:
    if second <= 0:
        return "-"
    return f"{first / second:.1f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=DEFAULT_NOTEBOOK)
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (notebook copy and cache)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    args = parser.parse_args(argv)

    source = args.notebook.resolve()
    if not source.is_file():
        print(f"demo: no notebook at {source}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="nbflow-demo-"))
    try:
        return demo(source, scratch, args.timeout)
    finally:
        if args.keep:
            print(f"\nScratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def demo(source: Path, scratch: Path, timeout: int) -> int:
    notebook = scratch / source.name
    shutil.copy(source, notebook)
    cache = scratch / "cache"
    clean = nbformat.read(notebook, as_version=4)
    for cell in clean.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    first_nb, second_nb = copy.deepcopy(clean), copy.deepcopy(clean)
    code_cells = sum(cell.cell_type == "code" for cell in clean.cells)

    try:
        shown = source.relative_to(Path.cwd())
    except ValueError:
        shown = source
    print(f"nbflow demo: {shown} ({code_cells} code cells)")
    print(f"  scratch copy: {notebook}")
    print(f"  cache:        {cache} (NBFLOW_DIR, empty)")
    print()

    env = {**os.environ, "NBFLOW_DIR": str(cache)}
    kernel_log = scratch / "kernel.log"  # the kernel's own stderr (ipykernel's start-up warnings)
    client = NotebookClient(
        first_nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=True,
        resources={"metadata": {"path": str(scratch)}},
    )
    try:
        with open(kernel_log, "w") as log, client.setup_kernel(env=env, stderr=log):
            print("Run 1: executing every cell on an empty cache ...", flush=True)
            wall_first = run_all(client, first_nb)
            after_first = checkpoints(cache)
            print(f"  done in {seconds(wall_first)}; {len(after_first)} checkpoints saved")
            print("Restarting the kernel (all variables are lost) ...", flush=True)
            started = time.perf_counter()
            run_sync(client.km.restart_kernel)(now=True)
            run_sync(client.kc.wait_for_ready)(timeout=60)
            print(f"  kernel ready in {seconds(time.perf_counter() - started)}")
            print("Run 2: executing every cell again, same cache ...", flush=True)
            wall_second = run_all(client, second_nb)
            after_second = checkpoints(cache)
            print(f"  done in {seconds(wall_second)}")
    except CellExecutionError as error:
        print(f"\nFAIL: a cell raised an error:\n{ANSI.sub('', str(error))}", file=sys.stderr)
        return 2
    except Exception as error:  # e.g. DeadKernelError: show what the kernel said
        print(f"\nFAIL: {type(error).__name__}: {error}", file=sys.stderr)
        print(f"Kernel log ({kernel_log}):\n{kernel_log.read_text()[-5000:]}", file=sys.stderr)
        return 2

    rows = build_rows(first_nb, second_nb, after_first, after_second)
    print()
    print_table(rows, first_nb, second_nb)
    print()

    rewritten = sorted(key for key in after_first if after_second.get(key, {}).get("finished_at") != after_first[key].get("finished_at"))
    ran_again = sorted({key for row in rows for key in row.again} | set(rewritten))
    new_keys = sorted(set(after_second) - set(after_first))
    if ran_again or new_keys:
        print(f"FAIL: step(s) executed again after the restart: {', '.join(ran_again + new_keys)}")
        return 1
    steps = sum(len(row.keys) for row in rows)
    print(f"OK: all {steps} steps were restored after the restart; none executed again.")
    return 0


def build_rows(first_nb, second_nb, after_first: dict, after_second: dict) -> list[Row]:
    rows: list[Row] = []
    function_steps = {key: record for key, record in after_first.items() if record.get("kind") == "function"}
    for index, (cell, again) in enumerate(zip(first_nb.cells, second_nb.cells)):
        if cell.cell_type != "code":
            continue
        keys = [key for key, _ in status_lines(cell)]
        if keys:
            label = keys[0] if len(keys) == 1 else ", ".join(keys)
            row = Row(label, index, keys, cell_seconds(cell), cell_seconds(again))
            row.again = [key for key, action in status_lines(again) if action == "ran in"]
            rows.append(row)
            continue
        start, end = cell_window(cell)
        called = [key for key, record in function_steps.items() if start <= float(record.get("started_at") or 0) <= end]
        if called:
            label = f"{called[0]} .. {called[-1]} ({len(called)} @step calls)" if len(called) > 1 else f"{called[0]} (@step)"
            row = Row(label, index, called, cell_seconds(cell), cell_seconds(again))
            row.again = [key for key in called if after_second.get(key, {}).get("finished_at") != after_first[key].get("finished_at")]
            rows.append(row)
    return rows


def print_table(rows: list[Row], first_nb, second_nb) -> None:
    step_cells = {row.index for row in rows}
    other_first = sum(
        cell_seconds(cell) for index, cell in enumerate(first_nb.cells) if cell.cell_type == "code" and index not in step_cells
    )
    other_second = sum(
        cell_seconds(cell) for index, cell in enumerate(second_nb.cells) if cell.cell_type == "code" and index not in step_cells
    )
    others = sum(1 for index, cell in enumerate(first_nb.cells) if cell.cell_type == "code" and index not in step_cells)
    width = max([len("total (all cells)"), len(f"other cells ({others})"), *(len(row.label) for row in rows)])
    header = f"{'step':<{width}}  {'run 1':>8}  {'run 2':>8}  {'speedup':>8}  run 2"
    print(header)
    print("-" * len(header))
    for row in rows:
        state = "EXECUTED AGAIN: " + ", ".join(row.again) if row.again else "restored"
        print(f"{row.label:<{width}}  {seconds(row.first):>8}  {seconds(row.second):>8}  {speedup(row.first, row.second):>8}  {state}")
    print(
        f"{f'other cells ({others})':<{width}}  {seconds(other_first):>8}  {seconds(other_second):>8}  {'':>8}  plain cells, run every time"
    )
    print("-" * len(header))
    total_first = sum(row.first for row in rows) + other_first
    total_second = sum(row.second for row in rows) + other_second
    steps_first, steps_second = sum(row.first for row in rows), sum(row.second for row in rows)
    print(f"{'steps':<{width}}  {seconds(steps_first):>8}  {seconds(steps_second):>8}  {speedup(steps_first, steps_second):>8}")
    print(f"{'total (all cells)':<{width}}  {seconds(total_first):>8}  {seconds(total_second):>8}  {speedup(total_first, total_second):>8}")
    print("Times are each cell's kernel-side execution time (nbclient timestamps), saving/restoring included.")


if __name__ == "__main__":
    sys.exit(main())
