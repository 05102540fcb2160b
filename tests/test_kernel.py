"""nbflow in real Jupyter kernels, driven by nbclient as a notebook front-end would.

Every step cell appends its key to ``runs.log`` (in the kernel's working
directory) when its body actually executes, so the tests can tell an executed
step from a restored one after a kernel restart. Each test owns a temporary
folder: the kernel runs there, and ``NBFLOW_DIR`` (passed in the kernel's
environment, kept across restarts) points the cache at ``<folder>/cache``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402
from nbclient.util import run_sync  # noqa: E402
from nbformat.v4 import new_code_cell, new_notebook  # noqa: E402

pytestmark = pytest.mark.kernel

KERNELSPEC = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def log(key: str) -> str:
    """A statement that records, in runs.log, that the step body executed."""
    return f"open('runs.log', 'a').write({key + chr(10)!r})"


# A chain load -> clean -> fit -> summary, plus `lookup`, which reads nothing
# from the others (summary reads it too). Plain Python values: numpy arrays
# are covered by test_numpy_array_restores_writeable_with_the_same_fingerprint.
STEPS = {
    "load": f"""%%step load
{log("load")}
import random
rng = random.Random(0)
data = [round(rng.gauss(50.0, 10.0), 6) for _ in range(5_000)]
print(f"loaded {{len(data)}} values")
""",
    "clean": f"""%%step clean
{log("clean")}
LIMIT = 60.0
clean = [x for x in data if x < LIMIT]
len(clean)
""",
    "lookup": f"""%%step lookup
{log("lookup")}
lookup = {{str(k): k * k for k in range(20)}}
""",
    "fit": f"""%%step fit
{log("fit")}
mean = sum(clean) / len(clean)
std = (sum((x - mean) ** 2 for x in clean) / len(clean)) ** 0.5
fit = {{"mean": round(mean, 9), "std": round(std, 9), "n": len(clean)}}
fit
""",
    "summary": f"""%%step summary
{log("summary")}
summary = f"mean={{fit['mean']:.3f}} n={{fit['n']}} lookup={{len(lookup)}}"
print(summary)
""",
}

# Prints every value the steps produced, as JSON (binds no name itself).
PROBE = """print(__import__("json").dumps({
    "data": data, "clean": clean, "LIMIT": LIMIT, "lookup": lookup,
    "fit": fit, "mean": mean, "std": std, "summary": summary, "rng": rng.random(),
}, sort_keys=True))"""


class Kernel:
    """One real kernel, running cells in ``folder``; every executed cell is appended to ``self.nb``."""

    def __init__(self, client: NotebookClient, folder: Path) -> None:
        self.client = client
        self.nb = client.nb
        self.folder = folder

    def run(self, source: str) -> nbformat.NotebookNode:
        cell = new_code_cell(source)
        self.nb.cells.append(cell)  # execute_cell(cell, index) writes nb.cells[index]
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell

    def run_all(self, sources: list[str]) -> list[nbformat.NotebookNode]:
        return [self.run(source) for source in sources]

    def restart(self) -> None:
        # client.km is an AsyncKernelManager: without run_sync the restart never happens.
        run_sync(self.client.km.restart_kernel)(now=True)
        run_sync(self.client.kc.wait_for_ready)(timeout=60)

    def probe(self) -> dict:
        return json.loads(stdout(self.run(PROBE)))

    def runs(self) -> list[str]:
        path = self.folder / "runs.log"
        return path.read_text().split() if path.exists() else []


@pytest.fixture
def kernel(tmp_path: Path):
    """A kernel in tmp_path with NBFLOW_DIR=tmp_path/cache; the repository is never touched."""
    cache = tmp_path / "cache"
    env = {**os.environ, "NBFLOW_DIR": str(cache)}
    nb = new_notebook(metadata=KERNELSPEC)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel(env=env):
        kernel = Kernel(client, tmp_path)
        yield kernel


def stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream" and output.name == "stdout")


def status_lines(cell: nbformat.NotebookNode) -> list[str]:
    return [line for line in stdout(cell).splitlines() if line.startswith("[nbflow] ")]


def without_status(cell: nbformat.NotebookNode) -> tuple:
    """A cell's outputs as the user sees them, minus nbflow's status line."""
    text = "".join(line + "\n" for line in stdout(cell).splitlines() if not line.startswith("[nbflow] "))
    results = [output.data for output in cell.outputs if output.output_type in ("execute_result", "display_data")]
    return text, results


def step_sources(steps: dict[str, str]) -> list[str]:
    return ["%load_ext nbflow", *steps.values()]


def test_restart_restores_chain_and_an_edit_reruns_only_its_dependents(kernel: Kernel) -> None:
    # 1. Empty cache: every step executes once, in notebook order.
    first = kernel.run_all(step_sources(STEPS))
    assert "(0 steps)" in stdout(first[0])
    assert f"cache at {kernel.folder / 'cache'} " in stdout(first[0])
    assert (kernel.folder / "cache").is_dir() and not (kernel.folder / ".nbflow").exists()
    assert kernel.runs() == list(STEPS)
    for cell, key in zip(first[1:], STEPS):
        [line] = status_lines(cell)
        assert line.startswith(f"[nbflow] {key}: ran in ") and "(no checkpoint yet)" in line, line
    values = kernel.probe()
    assert values["fit"]["n"] < 5_000 and values["summary"].endswith("lookup=20")

    # 2. Restart and run all: nothing executes; values, printed output and Out are the same.
    kernel.restart()
    second = kernel.run_all(step_sources(STEPS))
    assert "(5 steps)" in stdout(second[0])
    assert kernel.runs() == list(STEPS), "a step executed again after a restart"
    for before, after, key in zip(first[1:], second[1:], STEPS):
        [line] = status_lines(after)
        assert line.startswith(f"[nbflow] {key}: restored "), line
        assert without_status(after) == without_status(before), f"step {key!r} did not replay its output"
    assert kernel.probe() == values

    # 3. Edit `clean` (a constant), restart, run all: clean and what reads it (fit, then summary) execute.
    edited = {**STEPS, "clean": STEPS["clean"].replace("LIMIT = 60.0", "LIMIT = 55.0")}
    assert edited["clean"] != STEPS["clean"]
    kernel.restart()
    third = kernel.run_all(step_sources(edited))
    assert kernel.runs()[len(STEPS) :] == ["clean", "fit", "summary"]
    reasons = {key: status_lines(cell)[0] for cell, key in zip(third[1:], STEPS)}
    assert "(code changed)" in reasons["clean"]
    assert "(input 'clean' changed)" in reasons["fit"]
    assert "(input 'fit' changed)" in reasons["summary"]
    assert " restored " in reasons["load"] and " restored " in reasons["lookup"]
    changed = kernel.probe()
    assert changed["LIMIT"] == 55.0
    assert {name for name in values if changed[name] != values[name]} == {"LIMIT", "clean", "fit", "mean", "std", "summary"}

    # 4. The new checkpoints hold in turn: restart, run all, nothing executes.
    kernel.restart()
    kernel.run_all(step_sources(edited))
    assert kernel.runs() == [*STEPS, "clean", "fit", "summary"]
    assert kernel.probe() == changed


def test_code_change_is_insensitive_to_comments_and_whitespace(kernel: Kernel) -> None:
    kernel.run_all(step_sources(STEPS))
    cosmetic = {**STEPS, "clean": STEPS["clean"].replace("LIMIT = 60.0", "# the cut-off\nLIMIT   =   60.0   # same value\n\n")}
    kernel.restart()
    cells = kernel.run_all(step_sources(cosmetic))
    assert kernel.runs() == list(STEPS)
    assert all(" restored " in status_lines(cell)[0] for cell in cells[1:])


def test_resume_alone_restores_everything_after_restart(kernel: Kernel) -> None:
    kernel.run_all(step_sources(STEPS))
    values = kernel.probe()
    kernel.restart()

    missing = kernel.run("print('data' in globals(), 'summary' in globals())")
    assert stdout(missing) == "False False\n"
    kernel.run("%load_ext nbflow")
    report = stdout(kernel.run("%nbflow resume"))
    assert report.startswith("nbflow: resumed 5 step(s): "), report
    assert set(report.splitlines()[0].split("step(s): ", 1)[1].split(", ")) == set(STEPS)
    assert "skipped" not in report
    assert kernel.probe() == values
    assert kernel.runs() == list(STEPS), "resume executed a step"

    # The restored values are what the step cells would restore: running them now executes nothing.
    cells = kernel.run_all(list(STEPS.values()))
    assert all(" restored " in status_lines(cell)[0] for cell in cells)
    assert kernel.runs() == list(STEPS)
    assert kernel.probe() == values


CHECK = f"""{log("check")}
def validate(t):
    if t < 1:
        raise ValueError(f"threshold too small: {{t}}")
    return t

checked = validate(threshold)
"""


def user_frames(traceback: list[str]) -> list[str]:
    """The traceback as text, without colours, cell numbers, and IPython's own frame that calls a cell magic."""
    text = [ANSI.sub("", part) for part in traceback]
    kept = [part for part in text if "run_cell_magic(" not in part and "skipping hidden" not in part]
    return [re.sub(r"In\[\d+\]", "In[N]", part) for part in kept]


def test_failing_step_raises_users_error_and_runs_again(kernel: Kernel) -> None:
    kernel.run_all(["%load_ext nbflow", "threshold = 0"])

    # The same code without nbflow, for the reference traceback.
    with pytest.raises(CellExecutionError) as plain:
        kernel.run(CHECK)
    with pytest.raises(CellExecutionError) as stepped:
        kernel.run("%%step check\n" + CHECK)
    error = stepped.value
    assert (error.ename, error.evalue) == ("ValueError", "threshold too small: 0")
    assert "ValueError: threshold too small: 0" in ANSI.sub("", str(error))
    [step_error] = [output for output in kernel.nb.cells[-1].outputs if output.output_type == "error"]
    [plain_error] = [output for output in kernel.nb.cells[-2].outputs if output.output_type == "error"]
    assert user_frames(step_error.traceback) == user_frames(plain_error.traceback)
    shown = "".join(ANSI.sub("", part) for part in step_error.traceback)
    assert "nbflow" not in shown.replace("run_cell_magic('step'", ""), "nbflow's own frames leak into the user's traceback"
    assert "[nbflow] check" not in stdout(kernel.nb.cells[-1]), "a failed step printed a status line"
    assert kernel.runs() == ["check", "check"]  # the plain cell, then the step

    # Next time (same code, same inputs) it executes again, and fails again: a failure is never restored.
    with pytest.raises(CellExecutionError):
        kernel.run("%%step check\n" + CHECK)
    kernel.restart()
    kernel.run_all(["%load_ext nbflow", "threshold = 0"])
    with pytest.raises(CellExecutionError) as again:
        kernel.run("%%step check\n" + CHECK)
    assert again.value.evalue == "threshold too small: 0"
    assert kernel.runs() == ["check"] * 4
    status = kernel.run("print(get_ipython().run_line_magic('nbflow', 'status'))")
    assert re.search(r"^check\s+failed\s.*ValueError: threshold too small: 0$", stdout(status), re.M), stdout(status)

    # Fixed input: it runs, says why, and checkpoints; then it is restored.
    kernel.run("threshold = 5")
    fixed = kernel.run("%%step check\n" + CHECK)
    [line] = status_lines(fixed)
    assert "ran in" in line and "(last run failed (ValueError: threshold too small: 0))" in line, line
    assert "checked" in line
    restored = kernel.run("%%step check\n" + CHECK)
    assert " restored " in status_lines(restored)[0]
    assert kernel.runs() == ["check"] * 5


def test_step_traceback_names_the_cell_that_ran(kernel: Kernel) -> None:
    kernel.run_all(["%load_ext nbflow", "threshold = 0"])
    with pytest.raises(CellExecutionError):
        kernel.run("%%step check\n" + CHECK)
    cell = kernel.nb.cells[-1]
    labels = set(re.findall(r"In\[(\d+)\]", ANSI.sub("", "".join(cell.outputs[-1].traceback))))
    assert labels == {str(cell.execution_count)}


ARRAY_STEPS = [
    "%load_ext nbflow",
    "import numpy as np",
    f"""%%step make
{log("make")}
values = np.random.default_rng(1).normal(size=ROWS)
""",
    f"""%%step total
{log("total")}
total = float(values.sum())
""",
    "values[0] += 1.0; print(values.flags.writeable, total)",
]


def run_array_steps(kernel: Kernel, rows: int) -> list[nbformat.NotebookNode]:
    return kernel.run_all([*ARRAY_STEPS[:2], f"ROWS = {rows}", *ARRAY_STEPS[2:]])


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param(100_000, id="800KB-array"),
        pytest.param(1_000, id="8KB-array"),
    ],
)
def test_numpy_array_restores_writeable_with_the_same_fingerprint(kernel: Kernel, rows: int) -> None:
    first = run_array_steps(kernel, rows)
    kernel.restart()
    second = run_array_steps(kernel, rows)
    # The last cell mutates the restored array in place, as user code may.
    assert stdout(second[-1]) == stdout(first[-1])
    assert " restored " in status_lines(second[-2])[0], "a step reading a restored array executed again"
    assert kernel.runs() == ["make", "total"]


def test_resume_restores_the_values_the_kernel_had(kernel: Kernel) -> None:
    fit = f"%%step fit:{{alpha}}\n{log('fit')}\ncoef = [alpha * 2]\n"
    kernel.run("%load_ext nbflow")
    for alpha in (1, 2, 1):  # fit:1 executes, fit:2 executes, fit:1 is restored
        kernel.run(f"alpha = {alpha}")
        kernel.run(fit)
    assert kernel.runs() == ["fit", "fit"]
    before = stdout(kernel.run("print(coef)"))
    kernel.restart()
    kernel.run_all(["%load_ext nbflow", "%nbflow resume"])
    assert stdout(kernel.run("print(coef)")) == before == "[2]\n"


HELPER = """def scale(values):
    return [v * FACTOR for v in values]

FACTOR = 2
"""
USES_HELPER = f"""%%step scaled
{log("scaled")}
scaled = scale([1, 2, 3])
"""


def test_step_reruns_when_a_function_it_calls_or_its_globals_change(kernel: Kernel) -> None:
    """A helper defined in a plain cell is an input of the step that calls it, with the globals it reads."""
    kernel.run_all(["%load_ext nbflow", HELPER, USES_HELPER])
    kernel.restart()
    kernel.run_all(["%load_ext nbflow", HELPER, USES_HELPER])
    assert kernel.runs() == ["scaled"]  # same helper after a restart: restored
    kernel.run_all([HELPER.replace("v * FACTOR", "v * FACTOR + 1"), USES_HELPER])
    assert kernel.runs() == ["scaled", "scaled"]
    assert stdout(kernel.run("print(scaled)")) == "[3, 5, 7]\n"
    kernel.run_all([HELPER.replace("v * FACTOR", "v * FACTOR + 1").replace("FACTOR = 2", "FACTOR = 3"), USES_HELPER])
    assert kernel.runs() == ["scaled"] * 3
    assert stdout(kernel.run("print(scaled)")) == "[4, 7, 10]\n"


PLOT_STEP = f"""%%step plot
{log("plot")}
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(2, 2))
ax.plot([1, 3, 2])
"""


def images(cell: nbformat.NotebookNode) -> list[str]:
    return [output.data["image/png"] for output in cell.outputs if output.output_type == "display_data" and "image/png" in output.data]


def test_inline_plot_is_replayed_after_a_restart(kernel: Kernel) -> None:
    kernel.run_all(["%load_ext nbflow", "%matplotlib inline"])
    first = kernel.run(PLOT_STEP)
    assert len(images(first)) == 1, "the figure is shown once, as without nbflow"
    kernel.restart()
    kernel.run_all(["%load_ext nbflow", "%matplotlib inline"])
    second = kernel.run(PLOT_STEP)
    assert " restored " in status_lines(second)[0]
    assert len(images(second)) == 1, "the restored step shows its figure again"
    assert kernel.runs() == ["plot"]


def test_long_saves_and_restores_show_a_live_progress_line_in_the_notebook(kernel):
    """In a kernel the bar is one display output updated in place (display_id), not text on stderr."""
    cell = "%%step big\nimport numpy as np\nbig = np.ones(2_000_000)"
    kernel.run_all(["%load_ext nbflow", "import nbflow._progress as p\np.DELAY = 0.0"])
    saved = kernel.run(cell)
    bars = [output for output in saved.outputs if output.output_type == "display_data"]
    assert len(bars) == 1, saved.outputs
    assert bars[0].data["text/plain"].startswith("[nbflow] saving big: [") and "100% 16.0 MB / 16.0 MB" in bars[0].data["text/plain"]
    assert not [output for output in saved.outputs if output.get("name") == "stderr"]
    kernel.restart()
    kernel.run_all(["%load_ext nbflow", "import nbflow._progress as p\np.DELAY = 0.0"])
    restored = kernel.run(cell)
    bars = [output.data["text/plain"] for output in restored.outputs if output.output_type == "display_data"]
    assert len(bars) == 1 and bars[0].startswith("[nbflow] restoring big: [") and "100%" in bars[0], restored.outputs
    assert "restored big" in stdout(restored)
