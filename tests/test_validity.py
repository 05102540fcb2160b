"""When a checkpoint holds: key, code, inputs and TTL."""

from __future__ import annotations

import pytest
from conftest import restart, run

from nbflow import NbflowWarning
from nbflow._session import get_session

COUNTED = "runs = globals().get('runs', 0) + 1\n"


def step_ran(capsys, key: str) -> bool:
    out = capsys.readouterr().out
    if f"[nbflow] {key}: restored" in out:
        return False
    assert f"[nbflow] {key}: ran in" in out, out
    return True


def test_second_run_restores(shell, capsys):
    run(shell, "%%step a\nx = 1")
    assert step_ran(capsys, "a")
    run(shell, "%%step a\nx = 1")
    assert not step_ran(capsys, "a")


def test_code_change_reruns(shell, capsys):
    run(shell, "%%step a\nx = 1")
    capsys.readouterr()
    run(shell, "%%step a\nx = 2")
    assert step_ran(capsys, "a")
    assert shell.user_ns["x"] == 2


def test_code_change_reason_is_reported(shell, capsys):
    run(shell, "%%step a\nx = 1")
    capsys.readouterr()
    run(shell, "%%step a\nx = 2")
    assert "ran in" in (out := capsys.readouterr().out) and "(code changed)" in out


def test_comments_and_whitespace_are_not_changes(shell, capsys):
    run(shell, "%%step a\nx = 1")
    capsys.readouterr()
    run(shell, "%%step a\n# set x\nx  =  1   # one\n\n")
    assert not step_ran(capsys, "a")


def test_on_change_warn_restores_with_warning(shell, capsys):
    run(shell, "%%step a\nx = 1")
    capsys.readouterr()
    with pytest.warns(NbflowWarning, match="code changed"):
        run(shell, "%%step a --on-change warn\nx = 2")
    assert not step_ran(capsys, "a")
    assert shell.user_ns["x"] == 1


def test_on_change_ignore_restores_silently(shell, capsys, recwarn):
    run(shell, "%%step a\nx = 1")
    capsys.readouterr()
    run(shell, "%%step a --on-change ignore\nx = 2")
    assert not step_ran(capsys, "a")
    assert shell.user_ns["x"] == 1
    assert not [w for w in recwarn if issubclass(w.category, NbflowWarning)]


def test_on_change_default_from_config(shell, capsys):
    run(shell, "%nbflow config on_change=ignore")
    run(shell, "%%step a\nx = 1")
    capsys.readouterr()
    run(shell, "%%step a\nx = 2")
    assert not step_ran(capsys, "a")


def test_input_change_reruns(shell, capsys):
    run(shell, "n = 3")
    run(shell, "%%step a\nx = n * 2")
    run(shell, "n = 4")
    capsys.readouterr()
    run(shell, "%%step a\nx = n * 2")
    out = capsys.readouterr().out
    assert "ran in" in out and "input 'n' changed" in out
    assert shell.user_ns["x"] == 8


def second_run_executes(shell, capsys, step: str, *, setup: str = "", between: str = "", restart_between: bool = False) -> bool:
    """Run ``setup`` and ``step``; optionally restart (and run ``setup`` again); run ``between``, then ``step`` again."""
    if setup:
        run(shell, setup)
    run(shell, step)
    if restart_between:
        restart(shell)
        if setup:
            run(shell, setup)
    if between:
        run(shell, between)
    capsys.readouterr()
    run(shell, step)
    return step_ran(capsys, step.split()[1])


def test_same_input_value_after_restart_restores(shell, capsys):
    setup = "import numpy as np\narr = np.arange(1_000_000, dtype='float64')"
    assert not second_run_executes(shell, capsys, "%%step a\ntotal = float(arr.sum())", setup=setup, restart_between=True)


def test_helper_function_defined_in_plain_cell_survives_restart(shell, capsys):
    helper = "def double(v):\n    return v * 2\nclass Box:\n    def __init__(self, v):\n        self.v = v\nbox = Box(3)"
    assert not second_run_executes(shell, capsys, "%%step a\nx = double(box.v)", setup=helper, restart_between=True)


def test_globals_read_by_called_function_are_inputs(shell, capsys):
    setup = "factor = 2\ndef scale(v):\n    return v * factor"
    assert second_run_executes(shell, capsys, "%%step a\nx = scale(10)", setup=setup, between="factor = 3")
    assert shell.user_ns["x"] == 30


def test_upstream_change_cascades(shell, capsys):
    cells = ["%%step load\ndata = [1, 2, 3]", "%%step clean\nclean = [v * 10 for v in data]", "%%step fit\nmodel = sum(clean)"]
    for cell in cells:
        run(shell, cell)
    capsys.readouterr()
    run(shell, "%%step load\ndata = [1, 2, 4]")
    run(shell, cells[1])
    run(shell, cells[2])
    out = capsys.readouterr().out
    assert "clean: ran in" in out and "fit: ran in" in out
    assert shell.user_ns["model"] == 70


def test_upstream_rerun_with_same_value_does_not_cascade(shell, capsys):
    run(shell, "%%step load\ndata = [1, 2, 3]")
    run(shell, "%%step clean\nclean = [v * 10 for v in data]")
    run(shell, "%%step load --force\ndata = [1, 2, 3]")
    capsys.readouterr()
    run(shell, "%%step clean\nclean = [v * 10 for v in data]")
    assert not step_ran(capsys, "clean")


def test_input_that_appears_reruns(shell, capsys):
    cell = "%%step a\ntry:\n    x = maybe\nexcept NameError:\n    x = 'absent'"
    run(shell, cell)
    run(shell, "maybe = 'present'")
    run(shell, cell)
    assert shell.user_ns["x"] == "present"


def test_ttl_expiry(shell, clock, capsys):
    run(shell, "%%step a --ttl 1h\nx = 1")
    clock.advance(3599)
    capsys.readouterr()
    run(shell, "%%step a --ttl 1h\nx = 1")
    assert not step_ran(capsys, "a")
    clock.advance(2)
    run(shell, "%%step a --ttl 1h\nx = 1")
    out = capsys.readouterr().out
    assert "ran in" in out and "expired" in out


def test_default_ttl_from_config(shell, clock, capsys):
    run(shell, "%nbflow config ttl=30s")
    run(shell, "%%step a\nx = 1")
    clock.advance(31)
    capsys.readouterr()
    run(shell, "%%step a\nx = 1")
    assert step_ran(capsys, "a")


@pytest.mark.parametrize(
    "text, seconds", [("30s", 30), ("15m", 900), ("6h", 21600), ("7d", 604800), ("2w", 1209600), ("90", 90), ("never", None)]
)
def test_ttl_formats(shell, text, seconds):
    run(shell, f"%%step a --ttl {text}\nx = 1")
    assert get_session().records()[0]["ttl"] == seconds


def test_key_change_is_a_new_step(shell, capsys):
    run(shell, "%%step a\nx = 1")
    capsys.readouterr()
    run(shell, "%%step b\nx = 1")
    assert step_ran(capsys, "b")


def test_key_template_gives_each_value_its_own_entry(shell, capsys):
    cell = "%%step fit:{alpha}\nscore = alpha * 10"
    for alpha in (1, 2):
        run(shell, f"alpha = {alpha}")
        run(shell, cell)
    capsys.readouterr()
    run(shell, "alpha = 1")
    run(shell, cell)
    assert not step_ran(capsys, "fit:1")
    assert shell.user_ns["score"] == 10
    assert {record["key"] for record in get_session().records()} == {"fit:1", "fit:2"}


def test_force_executes_and_overwrites(shell, capsys):
    run(shell, "%%step a\n" + COUNTED + "x = 1")
    run(shell, "%%step a --force\n" + COUNTED + "x = 1")
    assert shell.user_ns["runs"] == 2
    capsys.readouterr()
    run(shell, "%%step a\n" + COUNTED + "x = 1")
    assert not step_ran(capsys, "a")
