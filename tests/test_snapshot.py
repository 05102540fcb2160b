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
    run(shell, "%%step broken\nraise ValueError('nope')", ok=False)
    return nbflow.snapshot()


def test_snapshot_content(snap):
    assert json.loads(json.dumps(snap)) == snap
    assert snap["format_version"] == 1
    load = snap["steps"]["load"]
    assert load["state"] == "completed"
    assert load["outputs"]["data"]["type"] == "numpy.ndarray" and load["outputs"]["data"]["size"] > 800
    assert load["ttl"] == 86400 and load["expires_at"] == pytest.approx(load["finished_at"] + 86400)
    assert isinstance(load["code_hash"], str) and load["duration"] >= 0
    assert snap["steps"]["broken"]["state"] == "failed"
    assert snap["steps"]["broken"]["error"] == {"type": "ValueError", "message": "nope"}
    assert snap["execution"]["state"] == "failed" and snap["execution"]["current_step"] == "broken"
    assert snap["metadata"]["nbflow_version"] == nbflow.__version__
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
