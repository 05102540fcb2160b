"""Step events: what `subscribe`d callbacks hear, in which order, with which state; a failing subscriber breaks nothing."""

from __future__ import annotations

import json

import pytest
from conftest import restart, run

import nbflow
import nbflow._progress as progress_module
from nbflow import NbflowWarning, StepEvent
from nbflow._session import get_session


@pytest.fixture
def events():
    seen: list[StepEvent] = []
    unsubscribe = nbflow.subscribe(seen.append)
    yield seen
    unsubscribe()


def kinds(seen, key=None):
    return [(event.kind, event.key) for event in seen if key is None or event.key == key]


def test_an_executed_step_is_started_then_completed_then_makes_a_version(shell, events):
    run(shell, "%%step load\ndata = list(range(10))")
    assert kinds(events) == [("step_started", "load"), ("step_completed", "load"), ("version_created", "load")]
    started, completed, version = events
    assert started.state["state"] == "running" and started.reason == "no checkpoint yet"
    assert completed.state["state"] == "completed"
    assert completed.state["outputs"]["data"]["type"] == "list"
    assert completed.state["version"] == "v1"
    assert version.version is not None and version.version["id"] == "v1" and version.version["added"] == ["data"]
    assert completed.state == nbflow.snapshot()["steps"]["load"], "the event's state is the step as the snapshot shows it"
    assert started.time <= completed.time
    json.dumps([event.to_json() for event in events])  # JSON-serializable, or this raises


def test_a_restored_step_says_restored_and_makes_no_version(shell, events):
    run(shell, "%%step load\ndata = [1, 2]")
    events.clear()
    run(shell, "%%step load\ndata = [1, 2]")
    assert kinds(events) == [("step_restored", "load")]
    assert events[0].state["state"] == "restored"
    assert events[0].state["outputs"].keys() == {"data"}


def test_a_failing_step_says_why(shell, events):
    run(shell, "%%step broken\nraise ValueError('nope')", ok=False)
    assert kinds(events) == [("step_started", "broken"), ("step_failed", "broken")]
    failed = events[-1]
    assert failed.reason == "ValueError: nope"
    assert failed.state["state"] == "failed" and failed.state["error"] == {"type": "ValueError", "message": "nope"}


def test_resume_tells_which_steps_it_restored_and_which_it_skipped(shell, events):
    run(shell, "%%step load\ndata = list(range(10))")
    run(shell, "%%step broken\nraise ValueError('nope')", ok=False)
    restart(shell)
    events.clear()
    run(shell, "%nbflow resume")
    assert kinds(events) == [("step_restored", "load"), ("step_skipped", "broken")]
    assert "failed: ValueError: nope" in events[1].reason
    assert events[1].state["state"] == "failed"


def test_function_steps_emit_events_too(shell, events):
    run(shell, "import nbflow\n@nbflow.step\ndef square(x):\n    return x * x")
    run(shell, "a = square(3)\nb = square(3)")
    assert [kind for kind, _ in kinds(events)] == ["step_started", "step_completed", "step_restored"]
    assert len({key for _, key in kinds(events)}) == 1 and events[0].key.startswith("square:")
    assert events[1].state["kind"] == "function" and events[1].state["state"] == "completed"


def test_a_failing_subscriber_is_reported_and_breaks_nothing(shell, events):
    def broken(event):
        raise RuntimeError("subscriber bug")

    unsubscribe = nbflow.subscribe(broken)
    with pytest.warns(NbflowWarning, match=r"event subscriber .*broken raised RuntimeError: subscriber bug on") as reports:
        run(shell, "%%step load\ndata = [1, 2, 3]")
    unsubscribe()
    assert [str(report.message).split(" on ")[1].split(" for ")[0] for report in reports] == [
        "step_started",
        "step_completed",
        "version_created",
    ]
    assert shell.user_ns["data"] == [1, 2, 3]
    assert nbflow.snapshot()["steps"]["load"]["state"] == "completed", "the checkpoint was still saved"
    assert kinds(events) == [("step_started", "load"), ("step_completed", "load"), ("version_created", "load")]


def test_kinds_filter_and_unsubscribe(shell):
    seen: list[StepEvent] = []
    unsubscribe = nbflow.subscribe(seen.append, kinds=["step_completed"])
    run(shell, "%%step load\ndata = 1")
    assert kinds(seen) == [("step_completed", "load")]
    unsubscribe()
    unsubscribe()  # twice is harmless
    run(shell, "%%step other\nother = 2")
    assert kinds(seen) == [("step_completed", "load")]


def test_bad_subscriptions_are_one_line_errors():
    with pytest.raises(nbflow.InvalidOption, match="Unknown event kind 'step_finished'; the kinds are: step_started"):
        nbflow.subscribe(print, kinds=["step_finished"])
    with pytest.raises(nbflow.InvalidOption, match="takes a callable"):
        nbflow.subscribe("not callable")  # type: ignore[arg-type]
    assert set(nbflow.EVENT_KINDS) >= {"step_started", "step_completed", "step_restored", "step_failed", "step_skipped", "version_created"}


def test_slow_checkpoints_emit_progress(shell, events, monkeypatch):
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    monkeypatch.setattr(progress_module, "_REFRESH", 0.0)
    run(shell, "%%step big\nblob = bytes(8_000_000)")
    progress = [event.progress for event in events if event.kind == "step_progress"]
    assert progress, "no step_progress event while an 8 MB checkpoint was written"
    done = [moved for moved, _ in progress]
    assert done == sorted(done) and progress[-1][0] == progress[-1][1] > 8_000_000 - 1
    assert all(event.state["state"] == "running" for event in events if event.kind == "step_progress")
    assert kinds(events)[-2:] == [("step_completed", "big"), ("version_created", "big")]


def test_this_kernels_activity_is_kept_without_subscribers(shell):
    run(shell, "%%step load\ndata = [1]")
    restart(shell)
    assert [row["state"] for row in nbflow.status().rows] == ["completed"]
    run(shell, "%nbflow resume")
    assert [row["state"] for row in nbflow.status().rows] == ["restored"]
    assert get_session().activity.live["load"][0] == "restored"
