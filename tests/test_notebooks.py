"""The notebooks in notebooks/ run, and reproduce their stored outputs (nbval), from a fresh clone.

Each notebook is validated on a scratch copy (nbval runs the kernel in the
notebook's folder) with ``NBFLOW_DIR`` pointing at an empty cache, so the
stored outputs must be those of a first run. The same copy then runs again in
the same cache, in new kernels: nothing executes, every step is restored.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbval")

from nbclient import NotebookClient  # noqa: E402

from nbflow import Config  # noqa: E402
from nbflow._session import Session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SANITIZE = ROOT / "notebooks" / "nbval_sanitize.cfg"
STATUS = re.compile(r"^\[nbflow\] (\S+): (ran in|restored) ", re.M)


def test_there_are_notebooks() -> None:
    assert [path.name for path in NOTEBOOKS if path.name == "quickstart.ipynb"], NOTEBOOKS
    assert SANITIZE.is_file()


def stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("name") == "stdout")


def user_outputs(cell: nbformat.NotebookNode) -> tuple:
    """What a step cell shows besides nbflow's status line."""
    text = "".join(line + "\n" for line in stdout(cell).splitlines() if not line.startswith("[nbflow] "))
    return text, [dict(output.data) for output in cell.outputs if output.output_type in ("execute_result", "display_data")]


def step_cells(nb: nbformat.NotebookNode) -> list[tuple[int, list[tuple[str, str]]]]:
    """(cell index, [(key, 'ran in' | 'restored'), ...]) for every cell that printed a status line."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            lines = STATUS.findall(stdout(cell))
            if lines:
                found.append((index, lines))
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_stored_outputs_are_a_first_run(notebook: Path) -> None:
    """The outputs nbval compares against come from one top-to-bottom run on an empty cache."""
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "not one clean run"
    assert not [cell for cell in code if any(output.output_type == "error" for output in cell.outputs)]
    loads = [stdout(cell) for cell in code if cell.source.strip() == "%load_ext nbflow"]
    assert loads and all(re.search(r"^nbflow: cache at .+ \(0 steps\)$", text, re.M) for text in loads), loads
    steps = step_cells(nb)
    assert steps, "no %%step cell in the notebook"
    for _index, lines in steps:
        assert all(action == "ran in" for _key, action in lines), lines
    assert "(no checkpoint yet)" in "".join(stdout(nb.cells[index]) for index, _ in steps)


def scratch_copy(notebook: Path, folder: Path) -> Path:
    """The notebook, the sanitize file and an empty pytest.ini (so the repository's config is not used)."""
    folder.mkdir()
    shutil.copy(notebook, folder / notebook.name)
    shutil.copy(SANITIZE, folder / SANITIZE.name)
    (folder / "pytest.ini").write_text("[pytest]\n")
    return folder / notebook.name


def run_nbval(copy: Path, cache: Path, *options: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "NBFLOW_DIR": str(cache)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *options, "--nbval-current-env", str(copy)]
    return subprocess.run(command, cwd=copy.parent, env=env, capture_output=True, text=True, timeout=600)


def checkpoints(cache: Path) -> dict[str, tuple]:
    """key -> (state, finished_at) of every record: a step that executes again gets a new finished_at."""
    session = Session(Config(dir=str(cache)))
    try:
        return {record["key"]: (record.get("state"), record.get("finished_at")) for record in session.records()}
    finally:
        session.close()


def explain(result: subprocess.CompletedProcess) -> str:
    return f"{' '.join(map(str, result.args))}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"


@pytest.mark.kernel
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_matches_stored_outputs_then_restores_everything(notebook: Path, tmp_path: Path) -> None:
    copy = scratch_copy(notebook, tmp_path / "nb")
    cache = tmp_path / "cache"
    cache.mkdir()

    # 1. First run on an empty cache: outputs equal the stored ones, once sanitized.
    first = run_nbval(copy, cache, "--nbval", "--nbval-sanitize-with", str(copy.parent / SANITIZE.name))
    print(explain(first))
    assert first.returncode == 0, explain(first)
    assert re.search(r"\b\d+ passed\b", first.stdout) and "failed" not in first.stdout
    saved = checkpoints(cache)
    assert saved and all(state == "completed" for state, _ in saved.values()), saved
    assert not (copy.parent / ".nbflow").exists(), "the notebook ignored NBFLOW_DIR"

    # 2. Second run, new kernel, same cache (nbval-lax: cells run without error); no step executed.
    second = run_nbval(copy, cache, "--nbval-lax")
    assert second.returncode == 0, explain(second)
    assert checkpoints(cache) == saved, "a checkpoint was rewritten: a step executed again in the second run"

    # 3. Once more with nbclient, to read what the cells show: every step says restored,
    #    and shows the same printed lines and results as the stored first run.
    nb = nbformat.read(copy, as_version=4)
    stored = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(copy.parent)}})
    client.execute(env={**os.environ, "NBFLOW_DIR": str(cache)})
    assert checkpoints(cache) == saved
    loads = [stdout(cell) for cell in nb.cells if cell.cell_type == "code" and cell.source.strip() == "%load_ext nbflow"]
    assert all(f"cache at {cache} ({len(saved)} steps)" in text for text in loads), loads
    again, before = step_cells(nb), step_cells(stored)
    assert [index for index, _ in again] == [index for index, _ in before]
    for (index, lines), (_, first_lines) in zip(again, before):
        assert [key for key, _ in lines] == [key for key, _ in first_lines]
        assert all(action == "restored" for _, action in lines), f"cell {index}: {lines}"
        assert user_outputs(nb.cells[index]) == user_outputs(stored.cells[index]), f"cell {index} did not replay its output"
