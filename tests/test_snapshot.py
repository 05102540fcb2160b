"""Snapshots: content, JSON round trip, validation."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import run
from hypothesis import given
from hypothesis import strategies as st

import nbflow
from nbflow import SnapshotFormatError, assert_valid_snapshot, is_step_complete, validate_snapshot


@pytest.fixture
def snap(shell):
    run(shell, "%%step load --ttl 1d\nimport numpy as np\ndata = np.arange(100)")
    run(shell, "%%step grow\ndata = np.arange(200)\nlabel = 'x'")
    run(shell, "%%step broken\nraise ValueError('nope')", ok=False)
    return nbflow.snapshot()


def test_snapshot_content(snap):
    assert json.loads(json.dumps(snap)) == snap
    assert snap["format_version"] == 2
    load = snap["steps"]["load"]
    assert load["state"] == "completed"
    assert load["outputs"]["data"]["type"] == "numpy.ndarray" and load["outputs"]["data"]["size"] > 800
    assert load["ttl"] == 86400 and load["expires_at"] == pytest.approx(load["finished_at"] + 86400)
    assert isinstance(load["code_hash"], str) and load["duration"] >= 0
    assert snap["steps"]["broken"]["state"] == "failed"
    assert snap["steps"]["broken"]["error"] == {"type": "ValueError", "message": "nope"}
    assert snap["execution"]["state"] == "failed" and snap["execution"]["current_step"] == "broken"
    assert snap["metadata"]["nbflow_version"] == nbflow.__version__
    assert sorted(snap["versions"]) == ["v1", "v2"] and load["version"] == "v1"
    second = snap["versions"]["v2"]
    assert second["parent"] == "v1" and second["step"] == "grow" and second["added"] == ["label"] and second["changed"] == ["data"]
    assert second["changes"]["data"]["type"] == "numpy.ndarray" and second["changes"]["data"]["blob"] in snap["blobs"]
    assert snap["steps"]["grow"]["outputs"]["data"]["blob"] in snap["blobs"]
    assert validate_snapshot(snap) == []
    assert_valid_snapshot(snap)


def test_is_step_complete(snap):
    assert is_step_complete(snap, "load")
    assert not is_step_complete(snap, "broken")
    assert not is_step_complete(snap, "missing")


@pytest.mark.parametrize(
    "mutate, problem",
    [
        (lambda s: s.pop("steps"), "missing 'steps'"),
        (lambda s: s.update(format_version=99), "'format_version' is 99"),
        (lambda s: s["steps"]["load"].update(state="done"), "'state' must be one of"),
        (lambda s: s["steps"]["load"].update(code_hash=None), "needs a 'code_hash'"),
        (lambda s: s["steps"]["broken"].update(error=None), "needs an 'error'"),
        (lambda s: s["steps"]["load"]["outputs"]["data"].update(size="big"), "integer 'size'"),
        (lambda s: s["steps"]["load"].update(finished_at="yesterday"), "'finished_at' must be a number"),
        (lambda s: s["execution"].update(state="sleeping"), "'execution.state' must be one of"),
        (lambda s: s.update(metadata=[]), "'metadata' must be a dict"),
        (lambda s: s.pop("versions"), "missing 'versions'"),
        (lambda s: s["versions"]["v2"].update(parent="v9"), "version 'v2': parent 'v9' is not in the snapshot (dangling parent)"),
        (lambda s: s["blobs"].clear(), "points to unknown blob"),
        (lambda s: s["versions"]["v1"].update(parent="v2"), "versions v1 -> v2 -> v1 form a parent cycle"),
        (lambda s: s["versions"]["v2"].update(changes=[]), "version 'v2': 'changes' must be a dict"),
        (lambda s: s["versions"]["v2"]["changes"]["data"].pop("blob"), "version 'v2': name 'data' needs a 'blob' id"),
        (lambda s: s.update(blobs={"a": "big"}), "'blobs' must be a dict of blob id -> size"),
    ],
)
def test_validation_names_each_problem(snap, mutate, problem):
    broken = copy.deepcopy(snap)
    mutate(broken)
    problems = validate_snapshot(broken)
    assert any(problem in item for item in problems), problems
    with pytest.raises(SnapshotFormatError, match="Invalid nbflow snapshot"):
        assert_valid_snapshot(broken)


def test_non_dict_snapshot():
    assert validate_snapshot([]) == ["a snapshot must be a dict (got list)"]


@given(st.dictionaries(st.text(max_size=5), st.none() | st.integers() | st.text(max_size=5), max_size=5))
def test_validator_never_crashes_on_junk(junk):
    assert isinstance(validate_snapshot(junk), list)
    assert (
        validate_snapshot(
            {
                **junk,
                "format_version": 1,
                "steps": {},
                "execution": {"state": "idle", "updated_at": None, "current_step": None},
                "metadata": {},
            }
        )
        == []
    )


def test_format_1_snapshots_without_versions_are_still_valid(snap):
    old = copy.deepcopy(snap)
    old["format_version"] = 1
    del old["versions"], old["blobs"]
    assert validate_snapshot(old) == []


def test_merge_snapshots_delta_wins(snap):
    delta = copy.deepcopy(snap)
    delta["steps"]["load"]["state"] = "expired"
    delta["steps"]["new"] = copy.deepcopy(snap["steps"]["grow"])
    delta["execution"] = {"state": "idle", "updated_at": 5.0, "current_step": "new"}
    delta["metadata"] = {"store": "elsewhere", "owner": "colleague"}
    delta["versions"]["v3"] = {**copy.deepcopy(snap["versions"]["v2"]), "parent": "v2", "step": "new"}
    merged = nbflow.merge_snapshots(snap, delta)
    assert merged["steps"]["load"]["state"] == "expired" and merged["steps"]["broken"] == snap["steps"]["broken"]
    assert sorted(merged["steps"]) == ["broken", "grow", "load", "new"]
    assert merged["execution"] == delta["execution"]
    assert merged["metadata"]["store"] == "elsewhere" and merged["metadata"]["owner"] == "colleague"
    assert merged["metadata"]["nbflow_version"] == nbflow.__version__
    assert sorted(merged["versions"]) == ["v1", "v2", "v3"]
    assert validate_snapshot(merged) == []
    merged["steps"]["load"]["state"] = "changed"
    assert snap["steps"]["load"]["state"] == "completed", "merge must not share structure with its inputs"


def test_merge_snapshots_rejects_invalid_input(snap):
    with pytest.raises(SnapshotFormatError, match="Invalid nbflow snapshot"):
        nbflow.merge_snapshots(snap, {"steps": {}})
    dangling = copy.deepcopy(snap)
    dangling["versions"] = {"v7": {**snap["versions"]["v2"], "parent": "v6"}}
    with pytest.raises(SnapshotFormatError, match="dangling parent"):
        nbflow.merge_snapshots({**copy.deepcopy(snap), "versions": {}}, dangling)
