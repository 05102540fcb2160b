"""Versions: diff-only storage, content addressing, resolve, diff, time travel, branches, gc."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import restart, run

import nbflow
from nbflow import InvalidOption
from nbflow._session import get_session
from nbflow._versions import load_versions


def versions_by_id():
    return load_versions(get_session().store)


def bytes_on_disk(directory: Path) -> int:
    return sum(entry.stat().st_size for entry in directory.rglob("*") if entry.is_file())


def test_each_executed_step_records_only_what_changed(shell):
    run(shell, "%%step load\nx = 1\ny = [1, 2]\nz = 'a'")
    run(shell, "%%step edit\ny = y + [3]\ndel z\nw = 2.5")
    run(shell, "%%step same\nx = 1")  # rebinds x to an equal value: nothing changed
    versions = versions_by_id()
    assert list(versions) == ["v1", "v2"]
    first, second = versions["v1"], versions["v2"]
    assert first.parent is None and first.step == "load" and first.added == ["x", "y", "z"]
    assert second.parent == "v1" and second.step == "edit"
    assert second.added == ["w"] and second.changed == ["y"] and second.removed == ["z"]
    assert sorted(second.changes) == ["w", "y"]  # x is not stored again
    assert second.changes["y"]["blob"] != first.changes["y"]["blob"]
    assert second.bytes_added > 0 and first.created_at <= second.created_at
    assert nbflow.resolve("v2") == {"x": 1, "y": [1, 2, 3], "w": 2.5}
    assert nbflow.resolve("v1") == {"x": 1, "y": [1, 2], "z": "a"}


def test_equal_values_share_one_blob_and_are_written_once(shell):
    run(shell, "%%step first\na = list(range(1000))")
    run(shell, "%%step second\nb = list(range(1000))")
    versions = versions_by_id()
    assert versions["v1"].changes["a"]["blob"] == versions["v2"].changes["b"]["blob"]
    assert versions["v2"].bytes_added == 0
    assert len(get_session().store.list_blobs()) == 1


def test_a_restored_step_makes_no_version_and_the_next_one_continues_the_line(shell):
    run(shell, "%%step a\nx = 1")
    run(shell, "%%step b\ny = x + 1")
    restart(shell)
    run(shell, "%%step a\nx = 1")
    run(shell, "%%step b\ny = x + 1")
    assert list(versions_by_id()) == ["v1", "v2"]
    assert get_session().position.head == "v2"
    run(shell, "%%step c\nz = y * 10")
    assert versions_by_id()["v3"].parent == "v2"


def test_resume_follows_the_versions_too(shell):
    run(shell, "%%step a\nx = 1")
    run(shell, "%%step b\ny = x + 1")
    restart(shell)
    run(shell, "%nbflow resume")
    assert get_session().position.head == "v2"


def test_diff_only_storage_next_to_a_large_array(shell, cache_dir):
    """A ~200 MB array and 20 small variables: five steps each changing one small variable write < 1 MB each."""
    run(
        shell,
        "%%step load\nimport numpy as np\nbig = np.arange(25_000_000, dtype='float64')\n" + "\n".join(f"s{i} = {i}" for i in range(20)),
    )
    assert bytes_on_disk(cache_dir) > 190_000_000
    for index in range(5):
        before = bytes_on_disk(cache_dir)
        run(shell, f"%%step change{index}\ns{index} = s{index} + float(big[{index}]) + 0.5")
        written = bytes_on_disk(cache_dir) - before
        assert written < 1_000_000, f"step change{index} wrote {written} bytes"
    versions = versions_by_id()
    assert [sorted(versions[f"v{n}"].changes) for n in range(2, 7)] == [[f"s{i}"] for i in range(5)]
    assert all(versions[f"v{n}"].bytes_added < 1_000 for n in range(2, 7))


def test_time_travel_round_trip_then_a_branch(shell):
    run(shell, "user_note = 'mine'")
    run(shell, "%%step load\ndata = [1, 2, 3]\nscale = 2")
    run(shell, "%%step scale\nscaled = [v * scale for v in data]")
    at_v2 = {
        name: list(shell.user_ns[name]) if isinstance(shell.user_ns[name], list) else shell.user_ns[name]
        for name in ("data", "scale", "scaled")
    }
    run(shell, "%%step mutate\ndata.append(4)\nscale = 3\ntotal = sum(data)")
    run(shell, "%%step report\nreport = f'{total}'")
    run(shell, "user_note = 'changed by me'")
    run(shell, "%nbflow resume v2")
    namespace = shell.user_ns
    assert {name: namespace[name] for name in at_v2} == at_v2
    assert "total" not in namespace and "report" not in namespace
    assert namespace["user_note"] == "changed by me"
    assert get_session().position.head == "v2"
    # A changed step after travelling branches from v2.
    run(shell, "%%step mutate2\nscale = 10")
    versions = versions_by_id()
    assert versions["v5"].parent == "v2" and versions["v3"].parent == "v2"
    rows = {row.id: row for row in nbflow.versions()}
    assert rows["v5"].branch and not rows["v3"].branch and rows["v5"].head
    assert nbflow.versions().ids == ["v1", "v2", "v3", "v4", "v5"]
    text = str(nbflow.versions())
    assert "└ v5" in text and "* " in text
    # And back to the other branch's tip.
    run(shell, "%nbflow resume v4")
    assert namespace["data"] == [1, 2, 3, 4] and namespace["total"] == 10 and namespace["report"] == "10" and namespace["scale"] == 3


def test_time_travel_keeps_shared_objects_shared(shell):
    run(shell, "%%step a\nitems = [1]\nsame = items")
    run(shell, "%%step b\nitems.append(2)")
    run(shell, "%nbflow resume v1")
    assert shell.user_ns["items"] == [1] and shell.user_ns["same"] is shell.user_ns["items"]


def test_time_travel_reads_nothing_that_already_holds(shell, monkeypatch):
    run(shell, "%%step a\nimport numpy as np\nbig = np.ones(1000)\nx = 1")
    run(shell, "%%step b\nx = 2")
    original = shell.user_ns["big"]
    report = nbflow.resume("v1")
    assert report.restored == ["x"] and "big" in report.kept
    assert shell.user_ns["big"] is original and shell.user_ns["x"] == 1


def test_time_travel_to_a_damaged_version_changes_nothing(shell):
    run(shell, "%%step a\nx = [1]")
    run(shell, "%%step b\nx = [2]")
    store = get_session().store
    store.delete_blob(versions_by_id()["v1"].changes["x"]["blob"])
    result = run(shell, "%nbflow resume v1", ok=False)
    assert "Cannot restore v1" in str(result.error_in_exec) and "unchanged" in str(result.error_in_exec)
    assert shell.user_ns["x"] == [2]


@pytest.mark.parametrize("bad", ["v99", "3", "latest"])
def test_unknown_versions_are_clear_errors(shell, bad):
    run(shell, "%%step a\nx = 1")
    result = run(shell, f"%nbflow resume {bad}", ok=False)
    message = str(result.error_in_exec)
    assert ("No version 'v99'" in message) if bad == "v99" else ("is not a version id" in message)
    with pytest.raises(InvalidOption):
        nbflow.diff(bad)


def test_diff_summaries_for_common_data(shell):
    run(
        shell,
        "%%step load\nimport numpy as np\nimport pandas as pd\n"
        "arr = np.zeros(100)\nreshaped = np.zeros((2, 3))\n"
        "frame = pd.DataFrame({'a': range(5), 'b': [1.0] * 5})\n"
        "count = 1\nname = 'old'\nitems = [1, 2]\nmapping = {'k': 1}\ngone = 0",
    )
    run(
        shell,
        "%%step change\narr = arr.copy()\narr[:7] = 1\nreshaped = np.zeros((3, 3), dtype='int64')\n"
        "frame = frame.drop(columns=['b']).assign(c=1)\nframe.loc[2, 'a'] = 99\nframe.loc[7] = [5, 1]\n"
        "count = 2\nname = 'new'\nitems = items + [3, 4]\nmapping = {'k': 2}\ndel gone\nfresh = (1, 2, 3)",
    )
    result = nbflow.diff()
    assert (result.a, result.b) == ("v1", "v2")
    assert result.added == ["fresh"] and result.removed == ["gone"]
    assert result.changed == ["arr", "count", "frame", "items", "mapping", "name", "reshaped"]
    assert result["arr"].summary == "7 of 100 elements differ"
    assert result["reshaped"].summary == "shape (2, 3) -> (3, 3); dtype float64 -> int64"
    frame = result["frame"].summary
    assert "shape (5, 2) -> (6, 2)" in frame and "columns added: c" in frame and "columns removed: b" in frame
    assert "1 rows changed, 1 added" in frame
    assert result["count"].summary == "1 -> 2"
    assert result["name"].summary == "'old' -> 'new'"
    assert result["items"].summary == "2 -> 4 items"
    assert result["mapping"].summary == "1 items, contents changed"
    assert result["fresh"].type == "tuple" and result["fresh"].repr == "(1, 2, 3)" and result["fresh"].summary == "3 items"
    assert result["gone"].type == "int" and result["gone"].repr == "0"
    assert result["arr"].type == "numpy.ndarray" and result["frame"].type == "pandas.DataFrame"
    text = str(result)
    assert text.startswith("nbflow: diff v1 -> v2: 1 added, 7 changed, 1 removed") and "~  arr" in text
    assert "<table" in result._repr_html_()
    # The magic, and explicit versions.
    assert shell.run_cell("%nbflow diff v1 v2").result.entries == result.entries
    assert nbflow.diff("v2").entries == result.entries
    assert nbflow.diff("v2", "v1").added == ["gone"]


def test_diff_of_arrays_counts_nan_as_equal(shell):
    run(shell, "%%step a\nimport numpy as np\narr = np.array([np.nan, 1.0, 2.0])")
    run(shell, "%%step b\narr = np.array([np.nan, 1.0, 3.0])")
    assert nbflow.diff()["arr"].summary == "1 of 3 elements differ"


def test_no_versions_yet_is_said_plainly(shell):
    assert "no versions yet" in str(nbflow.versions())
    with pytest.raises(InvalidOption, match="No versions yet"):
        nbflow.diff()


def referenced_blobs() -> set[str]:
    from nbflow._engine import blob_ids
    from nbflow._versions import needed_blobs

    session = get_session()
    needed = needed_blobs(versions_by_id(), list(versions_by_id()))
    for record in session.records():
        needed |= blob_ids(record)
    return needed


def test_gc_frees_exactly_the_unreferenced_blobs(shell):
    store = get_session().store
    run(shell, "%%step a\nimport numpy as np\nx = np.arange(100_000)\ny = [1]")  # x: a file blob, y: small
    run(shell, "%%step b\ny = y + [2]")
    run(shell, "%%step b --force\ny = y + [3]")  # b's first output now only in v2
    store.save_blob("0" * 32, [b"orphan from a crash"])
    all_blobs = set(store.list_blobs())
    expected_free = all_blobs - referenced_blobs()
    assert expected_free == {"0" * 32}
    report = nbflow.gc()
    assert report.blobs_removed == 1 and report.bytes_freed == len(b"orphan from a crash")
    assert set(store.list_blobs()) == all_blobs - expected_free
    # Keep only the newest version: v2's y is referenced by nothing else any more.
    v2_y = versions_by_id()["v2"].changes["y"]["blob"]
    sizes = {blob: store.blob_size(blob) for blob in store.list_blobs()}
    report = nbflow.gc(keep_last=1)
    assert report.versions_removed == ["v1", "v2"] and report.blobs_removed == 1 and report.bytes_freed == sizes[v2_y]
    assert set(store.list_blobs()) == set(sizes) - {v2_y}
    # v3 still resolves on its own, and the namespace can travel to it.
    assert versions_by_id()["v3"].parent is None and versions_by_id()["v3"].collected_parent == "v2"
    assert nbflow.resolve("v3")["y"] == [1, 2, 3]
    assert nbflow.resume("v3").version == "v3"


def test_gc_keeps_what_a_version_needs_after_its_step_expired(shell, clock):
    run(shell, "%%step a --ttl 1m\nx = [1, 2, 3]")
    run(shell, "%%step b\nx = x + [4]")
    clock.advance(120)
    blob = versions_by_id()["v1"].changes["x"]["blob"]
    report = nbflow.gc(drop_expired=True)
    assert report.steps_removed == ["a"] and report.blobs_removed == 0
    assert get_session().store.has_blob(blob) and nbflow.resolve("v1") == {"x": [1, 2, 3]}


def test_gc_options_are_checked(shell):
    for line, message in [
        ("%nbflow gc --keep-last", "takes a whole number"),
        ("%nbflow gc --keep-last -1", "takes a whole number"),
        ("%nbflow gc --keep-last=x", "takes a whole number"),
        ("%nbflow gc --all", "unknown option '--all'"),
    ]:
        result = run(shell, line, ok=False)
        assert message in str(result.error_in_exec), line
    with pytest.raises(InvalidOption, match="keep_last must be"):
        nbflow.gc(keep_last=-2)
    run(shell, "%%step a\nx = 1")
    run(shell, "%%step b\ny = 2")
    run(shell, "%nbflow gc --keep-last=0")
    assert list(versions_by_id()) == ["v2"]  # where this kernel stands is always kept
    assert nbflow.resolve("v2") == {"x": 1, "y": 2}


def test_clear_all_removes_versions_too(shell):
    run(shell, "%%step a\nx = [1]")
    run(shell, "%nbflow clear --all")
    assert versions_by_id() == {} and get_session().store.list_blobs() == []
    run(shell, "%%step a\nx = [2]")
    assert list(versions_by_id()) == ["v1"] and versions_by_id()["v1"].parent is None


def test_clear_one_step_keeps_the_blobs_versions_need(shell):
    run(shell, "%%step a\nx = [1]")
    run(shell, "%nbflow clear a")
    assert nbflow.resolve("v1") == {"x": [1]}


def test_version_ids_are_unique_across_processes(cache_dir, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "writer.py"
    script.write_text(
        "import sys\nfrom IPython.testing.globalipapp import start_ipython\nip = start_ipython()\n"
        "ip.run_cell('%load_ext nbflow')\n"
        "for i in range(15):\n    ip.run_cell(f'%%step w{sys.argv[1]}:{i}\\nv_{sys.argv[1]}_{i} = {i}')\n"
    )
    env = {**os.environ, "NBFLOW_DIR": str(cache_dir)}
    workers = [subprocess.Popen([sys.executable, str(script), str(n)], env=env) for n in range(2)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0]
    versions = versions_by_id()
    assert len(versions) == 30 and sorted(v.number for v in versions.values()) == list(range(1, 31))


def test_time_travel_after_a_restart(shell):
    run(shell, "%%step a\nx = [1]\ny = 'one'")
    run(shell, "%%step b\nx = [1, 2]\nz = 3")
    restart(shell)
    run(shell, "z = 3")  # what step b left
    run(shell, "x = 'the user typed this'")
    report = nbflow.resume("v1")
    assert report.restored == ["x", "y"] and report.removed == ["z"]
    assert shell.user_ns["x"] == [1] and shell.user_ns["y"] == "one" and "z" not in shell.user_ns
    run(shell, "%%step c\ny = 'two'")
    assert versions_by_id()["v3"].parent == "v1"


def test_time_travel_leaves_names_of_unrelated_versions_alone(shell):
    run(shell, "%%step a\nx = 1")
    restart(shell)
    run(shell, "%%step other\nw = 5")  # a new root: this kernel never restored v1
    run(shell, "x = 'mine'")
    assert versions_by_id()["v2"].parent is None
    report = nbflow.resume("v2")
    assert report.removed == [] and shell.user_ns["x"] == "mine" and shell.user_ns["w"] == 5


def test_time_travel_keeps_a_later_name_the_user_changed_since(shell):
    run(shell, "%%step a\nx = 1")
    run(shell, "%%step b\nresult = [x]")
    run(shell, "result = 'edited by hand'")
    report = nbflow.resume("v1")
    assert report.left_alone == ["result"] and report.removed == []
    assert shell.user_ns["result"] == "edited by hand"
    assert "left alone" in str(report)


def test_damaged_version_records_are_skipped_not_fatal(shell):
    store = get_session().store
    store.save_record("__version__:v1", b"{not json")
    store.save_record("__version__:junk", b'{"format": 1, "id": "junk"}')
    run(shell, "%%step a\nx = 1")
    assert list(versions_by_id()) == ["v2"] and "v2" in str(nbflow.versions())
