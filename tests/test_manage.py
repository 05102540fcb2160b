"""The %nbflow line magic and its Python API: status, resume, clear, config, and the extension itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import restart, run

import nbflow
from nbflow import InvalidOption
from nbflow._session import get_session

NOTEBOOK = [
    "%%step load\ndata = list(range(10))",
    "%%step clean\nclean = [v * 2 for v in data]\ndel_me = 1",
    "%%step drop\ndel del_me",
    "%%step fit\nmodel = sum(clean)",
]


def run_all(shell):
    for cell in NOTEBOOK:
        run(shell, cell)


def test_status_table(shell, clock):
    run(shell, "%%step load --ttl 1h\ndata = list(range(10))")
    run(shell, "%%step broken\nraise ValueError('nope')", ok=False)
    clock.advance(120)
    table = shell.run_cell("%nbflow status").result
    assert [row["key"] for row in table.rows] == ["load", "broken"]
    load = table.rows[0]
    assert load["state"] == "completed" and load["ran"] == "2m 00s ago" and load["ttl left"] == "58m 00s" and load["outputs"] == "data"
    text = str(table)
    assert text.splitlines()[0].split() == ["key", "state", "ran", "duration", "ttl", "left", "size", "outputs", "why"]
    assert "ValueError: nope" in text
    assert "<table" in table._repr_html_()


def test_status_says_why_a_step_is_stale(shell, clock):
    run_all(shell)
    run(shell, "data = [0]")
    rows = {row["key"]: row for row in nbflow.status().rows}
    assert rows["load"]["state"] == "completed"
    assert rows["clean"]["state"] == "stale" and "input 'data' changed" in rows["clean"]["why"]
    clock.advance(10)
    run(shell, "%%step other --ttl 5s\nx = 1")
    clock.advance(6)
    rows = {row["key"]: row for row in nbflow.status().rows}
    assert rows["other"]["state"] == "expired"


def test_resume_after_restart_restores_everything_and_executes_nothing(shell, capsys):
    run_all(shell)
    expected = {name: shell.user_ns[name] for name in ("data", "clean", "model")}
    restart(shell)
    capsys.readouterr()
    run(shell, "%nbflow resume")
    out = capsys.readouterr().out
    assert "resumed 4 step(s): load, clean, drop, fit" in out
    for name, value in expected.items():
        assert shell.user_ns[name] == value
    assert "del_me" not in shell.user_ns, "a later step deleted it"


def test_resume_skips_steps_whose_inputs_changed_in_the_namespace(shell):
    run(shell, "n = 3")
    run(shell, "%%step scaled\nscaled = n * 2")
    run(shell, "%%step report\nreport = f'{scaled=}'")
    run(shell, "%%step unrelated\nother = 1")
    restart(shell)
    run(shell, "n = 4")
    report = nbflow.resume()
    assert report.restored == ["unrelated"]
    assert "input 'n' changed" in report.skipped["scaled"]
    assert "cannot be restored" in report.skipped["report"]
    assert "scaled" not in shell.user_ns and "report" not in shell.user_ns


def test_resume_skips_a_step_whose_upstream_reran_with_another_value(shell):
    run_all(shell)
    run(shell, "%%step load\ndata = list(range(5))")
    restart(shell)
    report = nbflow.resume()
    assert "load" in report.restored
    assert "clean" in report.skipped and "fit" in report.skipped
    assert shell.user_ns["data"] == list(range(5))
    assert "model" not in shell.user_ns


def test_resume_skips_dependents_of_failed_steps(shell):
    run(shell, "%%step load\ndata = [1]")
    run(shell, "%%step clean\nclean = [v * 2 for v in data]")
    run(shell, "%%step load\ndata = [2]\nraise RuntimeError('x')", ok=False)
    restart(shell)
    report = nbflow.resume()
    assert report.restored == []
    assert "failed" in report.skipped["load"] and "cannot be restored" in report.skipped["clean"]


def test_resume_reimports_modules_the_steps_used(shell):
    run(shell, "import json")
    run(shell, "%%step a\ntext = json.dumps([1])")
    restart(shell)
    report = nbflow.resume()
    assert shell.user_ns["json"].dumps is not None and "json" in report.imported


def test_resume_outside_ipython_needs_a_namespace(cache_dir):
    namespace: dict = {}
    assert nbflow.resume(namespace).restored == []


def test_clear_one_and_all(shell, cache_dir):
    run_all(shell)
    run(shell, "%nbflow clear clean")
    assert "clean" not in {record["key"] for record in get_session().records()}
    run(shell, "%nbflow clear --all")
    assert get_session().records() == []
    assert not [path for path in (cache_dir / "blobs").rglob("*") if path.is_file()]
    assert get_session().store.list_blobs() == []
    with pytest.raises(InvalidOption):
        nbflow.clear()


def test_clear_keeps_blobs_other_steps_share(shell):
    run(shell, "%%step a\nx = list(range(100))")
    run(shell, "%%step b\ny = list(range(100))")
    nbflow.clear("a")
    restart(shell)
    run(shell, "%nbflow resume")
    assert shell.user_ns["y"] == list(range(100))


def test_config_changes_dir_ttl_and_on_change(shell, tmp_path, capsys):
    run(shell, f"%nbflow config dir={tmp_path / 'elsewhere'} ttl=6h on_change=warn")
    out = capsys.readouterr().out
    assert f"dir={tmp_path / 'elsewhere'}" in out and "ttl=6h 00m" in out and "on_change=warn" in out
    run(shell, "%%step a\nx = 1")
    assert (tmp_path / "elsewhere" / "cache.db").exists()
    assert get_session().records()[0]["ttl"] == 21600


def test_load_message_and_loading_twice(shell, capsys):
    run(shell, "%%step a\nx = 1")
    nbflow.load_ipython_extension(shell)
    nbflow.load_ipython_extension(shell)
    out = capsys.readouterr().out
    assert out.count("(1 step)") == 2 and "nbflow: cache at" in out
    assert "step" in shell.magics_manager.magics["cell"]


def test_unload_removes_the_magics(shell):
    nbflow.unload_ipython_extension(shell)
    assert "step" not in shell.magics_manager.magics["cell"]
    assert "nbflow" not in shell.magics_manager.magics["line"]
    nbflow.load_ipython_extension(shell)
    assert "step" in shell.magics_manager.magics["cell"]


def test_import_is_light():
    code = "import sys, nbflow; print(sorted(m for m in ('ipywidgets', 'IPython', 'numpy', 'pandas') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
