"""Emit the step events of a restore, a failure and a completed run, with the step's snapshot entry as their state."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ._engine import Engine, SaveReport
from ._events import emit, running_entry
from ._snapshot import step_entry
from ._versions import Version, version_info


def emit_restored(engine: Engine, record: Mapping[str, Any]) -> None:
    """Tell subscribers that a step's checkpoint was put back."""
    now = engine.session.clock()
    emit(engine.session.activity, "step_restored", str(record["key"]), lambda: {**step_entry(record, now), "state": "restored"})


def emit_failed(engine: Engine, record: Mapping[str, Any], error: BaseException) -> None:
    """Tell subscribers that a step raised."""
    now = engine.session.clock()
    reason = f"{type(error).__name__}: {error}"
    emit(engine.session.activity, "step_failed", str(record["key"]), lambda: step_entry(record, now), reason=reason)


def emit_completed(engine: Engine, key: str, kind: str, report: SaveReport, version: Version | None) -> None:
    """Tell subscribers that a step ran to its end (checkpointed or not), then about the version it made."""
    session = engine.session
    now = session.clock()

    @functools.cache  # the record is read at most once for both events
    def entry() -> dict[str, Any]:
        record = report.record or engine.load(key)
        if record is None:  # nothing could be written: the run happened, its checkpoint did not
            return {**running_entry(kind, None), "state": "incomplete", "unsaved": {"(checkpoint)": report.error or "not saved"}}
        return step_entry(record, now)

    emit(session.activity, "step_completed", key, lambda: dict(entry()))
    if version is not None:
        emit(session.activity, "version_created", key, lambda: dict(entry()), version=version_info(version))


def emit_skipped(engine: Engine, record: Mapping[str, Any], reason: str) -> None:
    """Tell subscribers that `resume` did not restore a step, and why."""
    now = engine.session.clock()
    emit(engine.session.activity, "step_skipped", str(record["key"]), lambda: step_entry(record, now), reason=reason)
