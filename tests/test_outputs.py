"""Which names a step checkpoints: after a restore the namespace is what executing the cell makes it."""

from __future__ import annotations

import pickle

import pytest
from conftest import restart, run

CASES = {
    "assignment": (
        "",
        "x = 1\ny, z = 2, 3\nfirst, *rest = [1, 2, 3]\np = q = 'same'\nn: int = 5",
        ["x", "y", "z", "first", "rest", "p", "q", "n"],
    ),
    "augmented": ("total = 10", "total += 5", ["total"]),
    "import": ("", "import json\nimport os.path\nfrom math import pi as PI", ["json", "os", "PI"]),
    "def": ("", "def area(r):\n    return 3 * r * r", ["area"]),
    "class": ("", "class Point:\n    def __init__(self, x):\n        self.x = x\norigin = Point(0)", ["Point", "origin"]),
    "for": ("", "for index, letter in enumerate('abc'):\n    pass", ["index", "letter"]),
    "with": ("", "import contextlib\nwith contextlib.nullcontext(42) as answer:\n    pass", ["answer", "contextlib"]),
    "walrus": ("", "if (size := len('hello')) > 3:\n    big = True", ["size", "big"]),
    "comprehension": ("", "squares = [v * v for v in range(4)]", ["squares"]),
    "subscript": ("frame = {'a': 1}", "frame['b'] = 2", ["frame"]),
    "method": ("items = [1, 2]", "items.append(3)\nitems.extend([4])", ["items"]),
    "attribute": ("import types\nobj = types.SimpleNamespace(a=1)", "obj.b = 2", ["obj"]),
    "call_mutates": ("items = [1]\ndef grow(values):\n    values.append(len(values))", "grow(items)", ["items"]),
    "global_in_function": ("", "def setup():\n    global configured\n    configured = 'yes'\nsetup()", ["configured", "setup"]),
    "exec_binding": ("", "exec('hidden = 7')", ["hidden"]),
}


def _values(shell, names):
    return {name: pickle.dumps(shell.user_ns[name]) if name in shell.user_ns else None for name in names}


@pytest.mark.parametrize("case", sorted(CASES))
def test_restore_equals_execution(shell, capsys, case):
    setup, cell, names = CASES[case]
    if setup:
        run(shell, setup)
    run(shell, f"%%step {case}\n{cell}")
    expected = {name: shell.user_ns[name] for name in names}
    restart(shell)
    if setup:
        run(shell, setup)
    capsys.readouterr()
    run(shell, f"%%step {case}\n{cell}")
    assert f"[nbflow] {case}: restored" in capsys.readouterr().out
    for name in names:
        assert name in shell.user_ns, name
        restored = shell.user_ns[name]
        if case == "class" and name == "origin":
            assert restored.x == 0 and type(restored).__name__ == "Point"
        elif callable(restored) and not isinstance(restored, type):
            continue
        elif case != "class":
            assert restored == expected[name], name


def test_restored_function_works(shell):
    run(shell, "%%step fn\ndef area(r):\n    return 3 * r * r")
    restart(shell)
    run(shell, "%%step fn\ndef area(r):\n    return 3 * r * r")
    assert shell.run_cell("area(2)").result == 12


def test_deleted_names_stay_deleted(shell, capsys):
    run(shell, "scratch = 1\nkeep = 2")
    run(shell, "%%step tidy\ndel scratch\nresult = keep * 2")
    restart(shell)
    run(shell, "scratch = 1\nkeep = 2")
    capsys.readouterr()
    run(shell, "%%step tidy\ndel scratch\nresult = keep * 2")
    assert "restored" in capsys.readouterr().out
    assert "scratch" not in shell.user_ns
    assert shell.user_ns["result"] == 4


def test_unchanged_inputs_are_not_outputs(shell):
    from nbflow._session import get_session

    run(shell, "big = list(range(1000))")
    run(shell, "%%step summary\ntotal = sum(big)")
    record = get_session().records()[0]
    assert set(record["outputs"]) == {"total"}
    assert set(record["inputs"]) == {"big", "sum"}
    assert record["inputs"]["sum"] is None, "a builtin is recorded as not defined in the namespace"


def test_alias_of_mutated_object_is_restored_as_the_same_object(shell):
    run(shell, "%%step make\nleft = []\nright = left")
    run(shell, "%%step grow\nright.append(1)")
    restart(shell)
    run(shell, "%%step make\nleft = []\nright = left")
    run(shell, "%%step grow\nright.append(1)")
    assert shell.user_ns["left"] is shell.user_ns["right"]
    assert shell.user_ns["left"] == [1]


def test_result_and_output_are_replayed(shell, capsys):
    cell = "%%step show\nprint('computing')\nvalue = 41\nvalue + 1"
    first = run(shell, cell)
    assert first.result == 42
    restart(shell)
    capsys.readouterr()
    second = run(shell, cell)
    out = capsys.readouterr().out
    assert second.result == 42
    assert "computing" in out and "restored" in out


def test_semicolon_hides_result(shell):
    assert run(shell, "%%step quiet\nvalue = 1\nvalue;").result is None


def test_rich_display_is_replayed(shell):
    from IPython.core.displaypub import DisplayPublisher

    published = []

    class Recorder(DisplayPublisher):
        def publish(self, data, metadata=None, *args, **kwargs):
            published.append(data)

    original = shell.display_pub
    shell.display_pub = Recorder()
    try:
        cell = "%%step rich\nfrom IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))\nx = 1"
        run(shell, cell)
        restart(shell)
        shell.display_pub = Recorder()
        published.clear()
        run(shell, cell)
    finally:
        shell.display_pub = original
    assert any(item.get("text/html") == "<b>hi</b>" for item in published)


def rerun_all(shell, cells, *, restart_first=False):
    if restart_first:
        restart(shell)
    for cell in cells:
        run(shell, cell)


@pytest.mark.parametrize(
    "first, second, step, name, expected",
    [
        ("b = 1", "b = 2", "if 0:\n    b = 5", "b", 2),
        ("i = 7", "i = 3", "for i in range(0):\n    pass", "i", 3),
        ("a = 1", "a = 2", "b = [(a := v) for v in range(0)]", "a", 2),
        ("a = 1", "a = 2", "def g():\n    global a\n    a = 5", "a", 2),
    ],
    ids=["if-not-taken", "empty-for", "walrus-in-empty-comprehension", "global-in-uncalled-def"],
)
def test_a_binding_that_did_not_happen_is_not_restored(shell, first, second, step, name, expected):
    rerun_all(shell, [first, f"%%step s\n{step}"])
    rerun_all(shell, [second, f"%%step s\n{step}"])
    assert shell.user_ns[name] == expected


def test_a_temporary_bound_and_deleted_stays_deleted(shell):
    cells = ["%%step s\nc = 1\ndel c", "c = 2"]
    rerun_all(shell, cells)
    rerun_all(shell, cells[:1])
    assert "c" not in shell.user_ns


def test_shadowing_a_builtin_invalidates(shell):
    rerun_all(shell, ["%%step s\nb = len([1, 2])", "def len(values):\n    return 0"])
    run(shell, "%%step s\nb = len([1, 2])")
    assert shell.user_ns["b"] == 0


def test_mutated_then_rebound_input_updates_its_other_names(shell):
    cells = ["lst = [1, 2]", "lst2 = lst", "%%step s\nlst.pop()\nlst = []"]
    rerun_all(shell, cells)
    rerun_all(shell, cells, restart_first=True)
    assert shell.user_ns["lst2"] == [1] and shell.user_ns["lst"] == []


@pytest.mark.parametrize("first, second", [(3, 1), (1, 3)], ids=["alias-vanishes", "alias-appears"])
def test_aliases_must_match_for_a_restore(shell, first, second):
    cells = ["lst = [1]", "lst2 = lst if a > 2 else [0]", "%%step s\nlst.append(5)"]
    rerun_all(shell, [f"a = {first}", *cells])
    rerun_all(shell, [f"a = {second}", *cells])
    plain = {"a": second, "lst": [1, 5], "lst2": [1, 5] if second > 2 else [0]}
    assert {name: shell.user_ns[name] for name in plain} == plain
    assert (shell.user_ns["lst2"] is shell.user_ns["lst"]) == (second > 2)


def test_restored_function_reads_and_writes_the_notebook_namespace(shell):
    cells = ["a = 1", "%%step s\ndef f():\n    return a\ndef setc():\n    global c\n    c = 'set'", "a = 5"]
    rerun_all(shell, cells)
    rerun_all(shell, cells, restart_first=True)
    assert run(shell, "f()").result == 5
    run(shell, "setc()")
    assert shell.user_ns["c"] == "set"


def test_helper_mutating_a_global_is_not_an_output(shell):
    from nbflow._session import get_session

    cells = ["lst = []", "def g():\n    lst.append(1)", "%%step s\ng()", "g()"]
    rerun_all(shell, cells)
    record = next(record for record in get_session().records() if record["key"] == "s")
    assert set(record["outputs"]) == {"lst"}
    rerun_all(shell, cells, restart_first=True)
    assert shell.user_ns["lst"] == [1, 1]


def test_restored_class_methods_use_the_notebook_namespace(shell):
    cells = [
        "scale = 2",
        "%%step s\nclass Box:\n    def size(self):\n        return scale\n    @property\n    def double(self):\n        return scale * 2\nbox = Box()",
        "scale = 3",
    ]
    rerun_all(shell, cells)
    rerun_all(shell, cells, restart_first=True)
    assert run(shell, "(box.size(), box.double, Box().size())").result == (3, 6, 3)


def test_shadowing_a_builtin_a_helper_uses_invalidates(shell):
    cells = ["def f():\n    return len([1, 2])", "%%step s\nb = f()", "def len(values):\n    return 0"]
    rerun_all(shell, cells)
    rerun_all(shell, cells[:2])
    assert shell.user_ns["b"] == 0


def test_mutation_through_a_tuple_is_an_output(shell):
    run(shell, "t = ([1],)")
    run(shell, "%%step s\nt[0].append(2)")
    restart(shell)
    run(shell, "t = ([1],)")
    run(shell, "%%step s\nt[0].append(2)")
    assert shell.user_ns["t"] == ([1, 2],)
