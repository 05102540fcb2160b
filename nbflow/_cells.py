"""Run one cell as a step: fingerprint its inputs, restore or execute it, find and checkpoint its outputs."""

from __future__ import annotations

import re
import time
import types
from collections.abc import Callable, Container, Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from ._code import analyze, code_hash, function_globals, is_builtin_name
from ._engine import NO_RESULT, Engine, Restored, SaveReport, StepOptions, warn
from ._errors import CorruptBlob
from ._serialization import fingerprint

# Names IPython manages itself (output history, input history, dunders, helpers).
_MANAGED = re.compile(r"^(_+|_i+\d*|_\d+|_[iod]h|__\w+__|In|Out|get_ipython|exit|quit)$")
_IMMUTABLE = (type(None), bool, int, float, complex, str, bytes, tuple, frozenset, range, types.ModuleType, type)


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


def is_managed(name: str, hidden: Container[str] = ()) -> bool:
    """Whether ``name`` belongs to IPython rather than to the user's analysis."""
    return name in hidden or bool(_MANAGED.match(name))


class _Fingerprints(dict[str, Any]):
    """Input fingerprints computed on first use; ``None`` marks a name that is not defined."""

    def __init__(self, namespace: MutableMapping[str, Any]) -> None:
        super().__init__()
        self.namespace = namespace

    def __missing__(self, name: str) -> str | None:
        value = fingerprint(self.namespace[name]) if name in self.namespace else None
        self[name] = value
        return value


def read_names(source: str, namespace: MutableMapping[str, Any], hidden: Container[str], module: str) -> set[str]:
    """The names a cell's result may depend on: what it reads, and the globals its functions read."""
    reads = {name for name in analyze(source).reads if not is_managed(name, hidden)}
    for name in list(reads):
        if name in namespace:
            reads |= function_globals(namespace[name], namespace, module)
    return {name for name in reads if not is_managed(name, hidden) and (name in namespace or not is_builtin_name(name))}


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
    reads = read_names(source, namespace, hidden, module)
    fingerprints = _Fingerprints(namespace)
    inputs = {name: fingerprints[name] for name in sorted(reads)}
    decision = engine.decide(key, cell_hash, fingerprints, options)
    if decision.hit and decision.record is not None:
        try:
            restored = engine.restore(decision.record)
        except CorruptBlob as exc:
            warn(f"Step {key!r}: the checkpoint cannot be read ({exc}); running the cell instead.")
            decision.reason = "checkpoint unreadable"
        else:
            if decision.warning:
                warn(decision.warning)
            for name in restored.deleted:
                namespace.pop(name, None)
            namespace.update(restored.values)
            engine.mark_used(decision.record)
            return CellRun(key, "restored", "", decision.record, restored.result, restored=restored)

    before = {name: id(value) for name, value in namespace.items()}
    session = engine.session
    session.set_execution("running", key)
    started_at = session.clock()
    clock_start = time.perf_counter()
    with capture() as captured:
        try:
            result = execute()
        except BaseException as error:
            duration = time.perf_counter() - clock_start
            binds = sorted(name for name in analyze(source).binds if not is_managed(name, hidden))
            engine.save_failure(
                key, kind="cell", code_hash=cell_hash, source=source, error=error, started_at=started_at, duration=duration, binds=binds
            )
            session.set_execution("failed", key)
            raise
    duration = time.perf_counter() - clock_start

    outputs, aliases, deleted = find_outputs(source, namespace, before, inputs, hidden)
    report = engine.save(
        key,
        kind="cell",
        code_hash=cell_hash,
        source=source,
        inputs=inputs,
        outputs={name: namespace[name] for name in outputs if name not in aliases},
        aliases=aliases,
        deleted=deleted,
        result=result,
        events=captured.events,
        started_at=started_at,
        duration=duration,
        options=options,
    )
    session.set_execution("idle", key)
    return CellRun(key, "executed", decision.reason, None, result, duration, report)


def find_outputs(
    source: str,
    namespace: MutableMapping[str, Any],
    before: dict[str, int],
    inputs: dict[str, str | None],
    hidden: Container[str] = (),
) -> tuple[list[str], dict[str, str], list[str]]:
    """Return (outputs, aliases, deleted) of a cell that just ran.

    Outputs are the names it binds (by its source, or because they are new or
    now name another object), the inputs whose content changed (in-place
    mutation), and other names for the same mutable objects. ``aliases`` maps a
    name to the output holding the same object; deleted names existed before and no longer do.
    """
    binds = analyze(source).binds
    outputs = {name for name in binds if name in namespace}
    for name, value in namespace.items():
        if name not in before or before[name] != id(value):
            outputs.add(name)
    for name, recorded in inputs.items():
        if name in namespace and name not in outputs and recorded is not None and fingerprint(namespace[name]) != recorded:
            outputs.add(name)
    outputs = {name for name in outputs if not is_managed(name, hidden)}
    owners: dict[int, str] = {}
    for name in sorted(outputs):
        value = namespace[name]
        if not isinstance(value, _IMMUTABLE):
            owners.setdefault(id(value), name)
    for name, value in namespace.items():
        if name not in outputs and not is_managed(name, hidden) and id(value) in owners:
            outputs.add(name)
    aliases = {}
    for name in sorted(outputs):
        owner = owners.get(id(namespace[name]))
        if owner is not None and owner != name:
            aliases[name] = owner
    deleted = sorted(name for name in before if name not in namespace and not is_managed(name, hidden))
    return sorted(outputs), aliases, deleted
