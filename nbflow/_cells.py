"""Run one cell as a step: fingerprint its inputs, restore or execute it, find and checkpoint its outputs."""

from __future__ import annotations

import time
from collections.abc import Callable, Container, Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from ._code import CellAnalysis, analyze, code_hash, function_globals
from ._engine import NO_RESULT, Engine, Restored, SaveReport, StepOptions
from ._errors import CorruptBlob, StoreError, warn
from ._events import emit, running_entry
from ._namespace import apply_restore, broken_alias_group, find_changes, is_managed, observe
from ._serialization import fingerprint
from ._step_events import emit_completed, emit_failed, emit_restored
from ._versions import Version, after_execution, after_restore


@dataclass
class Captured:
    """Output a cell produced while it ran, to replay on a later restore."""

    events: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def _no_capture() -> Iterator[Captured]:
    yield Captured()


@dataclass
class CellRun:
    """What one ``%%step`` run did."""

    key: str
    action: Literal["executed", "restored"]
    reason: str
    record: dict[str, Any] | None
    result: Any = NO_RESULT
    duration: float = 0.0
    report: SaveReport | None = None
    restored: Restored | None = None
    version: Version | None = None


class _Fingerprints(dict[str, Any]):
    """Input fingerprints computed on first use; ``None`` marks a name that is not defined."""

    def __init__(self, namespace: MutableMapping[str, Any]) -> None:
        super().__init__()
        self.namespace = namespace

    def __missing__(self, name: str) -> str | None:
        value = fingerprint(self.namespace[name]) if name in self.namespace else None
        self[name] = value
        return value


def read_names(analysis: CellAnalysis, namespace: MutableMapping[str, Any], hidden: Container[str], module: str) -> set[str]:
    """The names a cell's result may depend on: what it reads, and the globals its functions read."""
    reads = set(analysis.reads)
    for name in analysis.reads:
        if name in namespace and not is_managed(name, hidden):
            reads |= function_globals(namespace[name], namespace, module)
    # Builtins the cell calls are inputs too (recorded as undefined): defining `len` later must invalidate.
    return {name for name in reads if not is_managed(name, hidden)}


def run_cell_step(
    engine: Engine,
    *,
    key: str,
    source: str,
    namespace: MutableMapping[str, Any],
    execute: Callable[[], Any],
    options: StepOptions,
    hidden: Container[str] = (),
    module: str = "__main__",
    capture: Callable[[], AbstractContextManager[Captured]] = _no_capture,
) -> CellRun:
    """Restore the step ``key`` if its checkpoint holds, else ``execute()`` it and checkpoint its outputs.

    ``execute`` runs the cell in ``namespace`` and returns its result (or `NO_RESULT`);
    its exceptions propagate after the failure is recorded.
    """
    __tracebackhide__ = True  # noqa: F841 - IPython hides this frame in tracebacks
    cell_hash = code_hash(source)
    analysis = analyze(source)
    reads = read_names(analysis, namespace, hidden, module)
    fingerprints = _Fingerprints(namespace)
    inputs = {name: fingerprints[name] for name in sorted(reads)}
    decision = engine.decide(key, cell_hash, fingerprints, options)
    if decision.hit and decision.record is not None:
        broken = broken_alias_group(decision.record.get("alias_groups") or [], namespace, hidden)
        if broken:
            decision.hit, decision.reason = False, broken
    if decision.hit and decision.record is not None:
        try:
            restored = engine.restore(decision.record, mmap=options.mmap)
        except CorruptBlob as exc:
            warn(f"Step {key!r}: the checkpoint cannot be read ({exc}); running the cell instead.")
            decision.reason = "checkpoint unreadable"
        else:
            if decision.warning:
                warn(decision.warning)
            apply_restore(restored.values, restored.deleted, namespace)
            engine.mark_used(decision.record)
            after_restore(engine.session, decision.record, namespace)
            emit_restored(engine, decision.record)
            return CellRun(key, "restored", "", decision.record, restored.result, restored=restored)

    before = observe(namespace, list(inputs), hidden, analysis.binds)
    session = engine.session
    session.set_execution("running", key)
    started_at = session.clock()
    emit(session.activity, "step_started", key, lambda: running_entry("cell", started_at), reason=decision.reason)
    clock_start = time.perf_counter()
    with capture() as captured:
        try:
            result = execute()
        except BaseException as error:
            duration = time.perf_counter() - clock_start
            binds = sorted(name for name in analysis.binds if not is_managed(name, hidden))
            record = engine.save_failure(
                key, kind="cell", code_hash=cell_hash, source=source, error=error, started_at=started_at, duration=duration, binds=binds
            )
            session.set_execution("failed", key)
            emit_failed(engine, record, error)
            raise
    duration = time.perf_counter() - clock_start

    changes = find_changes(analysis.binds, namespace, before, inputs, hidden)
    report = engine.save(
        key,
        kind="cell",
        code_hash=cell_hash,
        source=source,
        inputs={**inputs, **changes.unchanged},
        outputs={name: namespace[name] for name in changes.outputs if name not in changes.aliases},
        aliases=changes.aliases,
        serialized=changes.frames,
        alias_groups=changes.alias_groups,
        shared=changes.shared,
        deleted=changes.deleted,
        result=result,
        events=captured.events,
        started_at=started_at,
        duration=duration,
        options=options,
    )
    version = record_version(engine, report, namespace)
    session.set_execution("idle", key)
    emit_completed(engine, key, "cell", report, version)
    return CellRun(key, "executed", decision.reason, None, result, duration, report, version=version)


def record_version(engine: Engine, report: SaveReport, namespace: MutableMapping[str, Any]) -> Version | None:
    """Create the version a saved step made, and note it in the step's record; warns instead of raising."""
    if report.record is None:
        return None
    try:
        version = after_execution(engine.session, report.record, namespace, report.written)
    except StoreError as exc:
        warn(f"Step {report.record['key']!r}: checkpoint saved, but no version recorded ({exc}).")
        return None
    if version is not None:
        report.record["version"] = version.id
        engine.update_record(report.record)
    return version
