"""Export a cache's state to one bundle file and import it elsewhere: another cache, another process."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import run

import nbflow
from nbflow import NbflowError
from nbflow._session import get_session
from nbflow._versions import load_versions

ANALYSIS = [
    "%%step load\nimport numpy as np\nimport pandas as pd\narr = np.arange(200_000, dtype='float64')\n"
    "frame = pd.DataFrame({'a': range(100), 'b': list('xy') * 50})\nsettings = {'alpha': 0.5}",
    "%%step scale\nscaled = arr * settings['alpha']\ndef double(v):\n    return 2 * v",
    "%%step tweak\nsettings = {'alpha': 0.7}\nlabel = 'final'",
]

IMPORTER = """
import pickle, sys
import nbflow
report = nbflow.import_state(sys.argv[1])
print(report)
latest = {}
print(nbflow.resume(namespace=latest))
at_v2 = {}
nbflow.resume("v2", namespace=at_v2)
values = {name: value for name, value in latest.items() if name not in ("np", "pd", "double")}
values["double(21)"] = latest["double"](21)
with open(sys.argv[2], "wb") as out:
    pickle.dump({"latest": values, "v2": {k: v for k, v in at_v2.items() if k not in ("np", "pd", "double")}}, out)
"""


def run_analysis(shell):
    for cell in ANALYSIS:
        run(shell, cell)


def test_export_then_import_into_an_empty_cache_in_another_process(shell, tmp_path):
    run_analysis(shell)
    namespace = shell.user_ns
    expected = {name: namespace[name] for name in ("arr", "frame", "settings", "scaled", "label")}
    bundle = tmp_path / "state.nbflow"
    run(shell, f"%nbflow export {bundle}")
    assert zipfile.is_zipfile(bundle)
    script = tmp_path / "importer.py"
    script.write_text(IMPORTER)
    other_cache = tmp_path / "other-cache"
    out = tmp_path / "values.pkl"
    result = subprocess.run(
        [sys.executable, str(script), str(bundle), str(out)],
        env={**os.environ, "NBFLOW_DIR": str(other_cache)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "imported 3 step(s) and 3 version(s)" in result.stdout and "resumed 3 step(s)" in result.stdout
    values = pickle.loads(out.read_bytes())
    latest = values["latest"]
    assert sorted(latest) == ["arr", "double(21)", "frame", "label", "scaled", "settings"]
    assert (latest["arr"] == expected["arr"]).all() and (latest["scaled"] == expected["scaled"]).all()
    assert latest["frame"].equals(expected["frame"])
    assert latest["settings"] == {"alpha": 0.7} and latest["label"] == "final" and latest["double(21)"] == 42
    assert values["v2"]["settings"] == {"alpha": 0.5} and "label" not in values["v2"]


def test_import_into_a_cache_with_its_own_versions_renumbers_and_recognises_known_ones(shell, tmp_path):
    run_analysis(shell)
    bundle = tmp_path / "state.nbflow"
    nbflow.export_state(bundle)
    nbflow.configure(dir=str(tmp_path / "mine"))
    run(shell, "%%step own\nmine = 1")
    report = nbflow.import_state(bundle)
    assert report.versions == {"v1": "v2", "v2": "v3", "v3": "v4"}
    assert "versions renumbered" in str(report)
    versions = load_versions(get_session().store)
    assert versions["v3"].parent == "v2" and versions["v4"].parent == "v3" and versions["v2"].parent is None
    record = json.loads(get_session().store.load_record("tweak"))
    assert record["version"] == "v4"
    again = nbflow.import_state(bundle)
    assert again.versions == {} and again.known_versions == ["v1", "v2", "v3"] and again.blobs_written == 0
    assert len(load_versions(get_session().store)) == 4


def test_import_then_resume_restores_equal_values_in_this_kernel(shell, tmp_path):
    run_analysis(shell)
    bundle = tmp_path / "state.nbflow"
    nbflow.export_state(bundle)
    expected_scaled = shell.user_ns["scaled"].copy()
    nbflow.configure(dir=str(tmp_path / "fresh"))
    shell.reset(new_session=False)
    run(shell, f"%nbflow import {bundle}")
    run(shell, "%nbflow resume")
    assert (shell.user_ns["scaled"] == expected_scaled).all()
    run(shell, "%%step tweak\nsettings = {'alpha': 0.7}\nlabel = 'final'")  # a restore, not a run
    assert len(load_versions(get_session().store)) == 3


def test_export_is_all_or_nothing(shell, tmp_path):
    run_analysis(shell)
    store = get_session().store
    blob = load_versions(store)["v1"].changes["settings"]["blob"]
    store.delete_blob(blob)
    target = tmp_path / "state.nbflow"
    with pytest.raises(NbflowError, match="Cannot export: .* missing .* belongs to step 'load'"):
        nbflow.export_state(target)
    assert list(tmp_path.glob("*state.nbflow*")) == []
    with pytest.raises(NbflowError, match="is a directory"):
        nbflow.export_state(tmp_path)


def test_export_to_a_full_disk_leaves_nothing(shell, tiny_disk):
    run_analysis(shell)  # over 3 MB of values: more than the 2 MB disk holds
    with pytest.raises(NbflowError, match="Cannot write the bundle .*nothing was written"):
        nbflow.export_state(tiny_disk / "state.nbflow")
    assert list(tiny_disk.iterdir()) == []


def broken_bundles(good: Path, folder: Path) -> dict[str, tuple[Path, str]]:
    data = good.read_bytes()
    cases = {}
    truncated = folder / "truncated.nbflow"
    truncated.write_bytes(data[: len(data) // 2])
    cases["truncated"] = (truncated, "damaged or not an nbflow bundle")
    text = folder / "notes.txt"
    text.write_text("hello")
    cases["not a zip"] = (text, "damaged or not an nbflow bundle")
    plain = folder / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("readme.txt", "hi")
    cases["other zip"] = (plain, "not an nbflow bundle (no nbflow-bundle.json)")
    with zipfile.ZipFile(good) as source:
        manifest = json.loads(source.read("nbflow-bundle.json"))
        members = {name: source.read(name) for name in source.namelist()}
    for name, change, message in [
        ("missing-blob", lambda m, files: files.pop(f"blobs/{next(iter(m['blobs']))}"), "is incomplete"),
        ("future", lambda m, files: m.update(format=99), "has format 99"),
        ("bad-snapshot", lambda m, files: m["snapshot"].pop("steps"), "invalid snapshot"),
        ("no-records", lambda m, files: m.pop("records"), "no 'records' dict"),
    ]:
        edited, files = json.loads(json.dumps(manifest)), dict(members)
        change(edited, files)
        files["nbflow-bundle.json"] = json.dumps(edited).encode()
        path = folder / f"{name}.nbflow"
        with zipfile.ZipFile(path, "w") as archive:
            for member, content in files.items():
                archive.writestr(member, content)
        cases[name] = (path, message)
    cases["missing file"] = (folder / "nope.nbflow", "No bundle at")
    return cases


def test_bad_bundles_are_clear_errors_and_change_nothing(shell, tmp_path):
    run_analysis(shell)
    good = tmp_path / "good.nbflow"
    nbflow.export_state(good)
    cases = broken_bundles(good, tmp_path)
    nbflow.configure(dir=str(tmp_path / "empty"))
    for name, (path, message) in cases.items():
        result = run(shell, f"%nbflow import {path}", ok=False)
        error = str(result.error_in_exec)
        assert message in error and "\n" not in error, f"{name}: {error}"
        store = get_session().store
        assert store.list_records() == [] or set(store.list_records()) <= {"__execution__"}, name
        if name != "missing-blob":
            assert store.list_blobs() == [], name
