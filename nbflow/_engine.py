"""Decide whether a step's checkpoint holds, save checkpoints, and load them back.

Front-ends (the ``%%step`` magic, the ``@step`` decorator) work out a step's
key, code hash and input fingerprints; this module does the rest.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._config import OnChange
from ._duration import format_duration, format_size
from ._errors import CorruptBlob, StoreError, warn
from ._events import progress_listener
from ._progress import tracking
from ._serialization import FORMAT_VERSION, Serialized, deserialize, serialize
from ._session import Position, Session, load_record
from ._summary import summarize
from ._versions import VERSION_PREFIX, versions_rewritten

# Increment on record format changes; records of another format are misses.
RECORD_FORMAT = 1
StepKind = Literal["cell", "function"]


class _NoResult:
    def __repr__(self) -> str:
        return "NO_RESULT"


NO_RESULT: Any = _NoResult()
"""A cell whose last statement is not an expression has no result."""


@dataclass(frozen=True)
class StepOptions:
    """How one run of a step treats its checkpoint."""

    ttl: float | None = None
    force: bool = False
    on_change: OnChange = "rerun"
    mmap: bool = False
    """Restore large values as copy-on-write memory maps of the saved files."""


@dataclass
class Decision:
    """Whether a step's checkpoint can be restored, and if not, why."""

    key: str
    hit: bool
    reason: str
    record: dict[str, Any] | None
    warning: str | None = None


@dataclass
class Restored:
    """A checkpoint read back: the values to put in the namespace and what to replay."""

    values: dict[str, Any]
    deleted: list[str]
    result: Any
    events: list[dict[str, Any]]
    nbytes: int


@dataclass
class SaveReport:
    """What a checkpoint attempt wrote."""

    saved: list[str] = field(default_factory=list)
    nbytes: int = 0
    unsaved: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    expires_at: float | None = None
    written: int = 0
    """Bytes of new blobs written (values already stored under the same content hash cost nothing)."""
    record: dict[str, Any] | None = None
    """The completed record, when the checkpoint was saved."""

    @property
    def ok(self) -> bool:
        return not self.unsaved and self.error is None


def is_expired(record: Mapping[str, Any], ttl: float | None, now: float) -> bool:
    """Whether a record computed at ``finished_at`` is older than ``ttl`` seconds."""
    return ttl is not None and now > float(record.get("finished_at") or 0.0) + ttl


def compare_inputs(recorded: Mapping[str, str | None], current: Mapping[str, str | None]) -> str | None:
    """Say which input changed, or ``None`` when all recorded inputs still hold."""
    for name in sorted(recorded):
        try:
            now = current[name]  # may compute the fingerprint on demand
        except KeyError:
            now = None
        before = recorded[name]
        if before == now:
            continue
        if before is None:
            return f"input {name!r} is now defined"
        if now is None:
            return f"input {name!r} is no longer defined"
        return f"input {name!r} changed"
    return None


class Engine:
    """Checkpoint logic over one `Session`'s store and clock."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def load(self, key: str) -> dict[str, Any] | None:
        """The record for ``key``, or ``None``; raises `StoreError`."""
        record = load_record(self.session.store, key)
        if record is not None and record.get("format") != RECORD_FORMAT:
            return None
        return record

    def decide(self, key: str, code_hash: str, inputs: Mapping[str, str | None], options: StepOptions) -> Decision:
        """Whether the checkpoint under ``key`` holds for this code and these inputs."""
        try:
            record = self.load(key)
        except StoreError as exc:
            return Decision(key, False, f"cache unreadable: {exc}", None)
        if options.force:
            return Decision(key, False, "forced", record)
        if record is None:
            return Decision(key, False, "no checkpoint yet", None)
        state = record.get("state")
        if state == "failed":
            error = record.get("error") or {}
            return Decision(key, False, f"last run failed ({error.get('type')}: {error.get('message')})", record)
        if state != "completed":
            names = ", ".join(sorted(record.get("unsaved") or {})) or "outputs"
            return Decision(key, False, f"last run could not checkpoint {names}", record)
        if record.get("serialization") != FORMAT_VERSION:
            return Decision(key, False, f"checkpoint format {record.get('serialization')} is not this nbflow's ({FORMAT_VERSION})", record)
        now = self.session.clock()
        if is_expired(record, options.ttl, now):
            age = now - float(record["finished_at"])
            return Decision(key, False, f"expired: computed {format_duration(age)} ago, ttl {format_duration(options.ttl)}", record)
        warning = None
        if record.get("code_hash") != code_hash:
            if options.on_change == "rerun":
                return Decision(key, False, "code changed", record)
            if options.on_change == "warn":
                warning = f"Step {key!r}: the code changed since the checkpoint; restoring the old results (--on-change warn)."
        changed = compare_inputs(record.get("inputs") or {}, inputs)
        if changed:
            return Decision(key, False, changed, record)
        return Decision(key, True, "", record, warning)

    def restore(self, record: Mapping[str, Any], *, mmap: bool = False) -> Restored:
        """Read a completed record's values back; raises `CorruptBlob` if any is missing or damaged.

        With ``mmap``, large values are copy-on-write maps of the saved files, read
        as they are touched; their checksum is not verified (that would read them all).
        """
        store = self.session.store
        outputs: Mapping[str, Mapping[str, Any]] = record.get("outputs") or {}
        nbytes = sum(int(meta.get("size") or 0) for meta in outputs.values())  # an alias's size is 0
        listener = progress_listener(self.session.activity, str(record.get("key")), str(record.get("kind", "cell")))
        with tracking(f"restoring {record.get('key')}", nbytes, listener=listener):
            values = self.read_values(outputs, mmap=mmap)
        result = self._read(store, record["result"]) if record.get("result") else NO_RESULT
        events = self._read(store, record["events"]) if record.get("events") else []
        return Restored(values, list(record.get("deleted") or []), result, events, nbytes)

    def read_values(self, entries: Mapping[str, Mapping[str, Any]], *, mmap: bool = False) -> dict[str, Any]:
        """Read name -> saved value; a name saved as sharing another name's object (same blob) shares it again.

        Raises `CorruptBlob`.
        """
        values: dict[str, Any] = {}
        for name, entry in entries.items():
            target = entry.get("alias_of")
            if not (target and target in entries and entries[target].get("blob") == entry.get("blob")):
                values[name] = self.read(entry, mmap=mmap)
        for name, entry in entries.items():
            if name not in values:
                values[name] = values[entry["alias_of"]]
        return values

    def read(self, meta: Mapping[str, Any], *, mmap: bool = False) -> Any:
        """Read one saved value described by ``meta`` (its ``blob``); raises `CorruptBlob`."""
        return self._read(self.session.store, meta, mmap=mmap)

    @staticmethod
    def _read(store: Any, meta: Mapping[str, Any], *, mmap: bool = False) -> Any:
        blob = meta["blob"]
        try:
            mapped = store.map_blob(blob) if mmap else None
            if mapped is not None:
                return deserialize(mapped, None)
            return deserialize(store.load_blob(blob), blob)
        except StoreError as exc:
            # Drop the damaged copy so the re-execution writes a good one under the same id.
            with contextlib.suppress(StoreError):
                store.delete_blob(blob)
            raise exc if isinstance(exc, CorruptBlob) else CorruptBlob(str(exc)) from exc

    def save(
        self,
        key: str,
        *,
        kind: StepKind,
        code_hash: str,
        source: str,
        inputs: Mapping[str, str | None],
        outputs: Mapping[str, Any],
        aliases: Mapping[str, str],
        serialized: Mapping[int, Serialized] | None = None,
        deleted: list[str],
        alias_groups: list[list[str]] | None = None,
        shared: list[str] | None = None,
        result: Any,
        events: list[dict[str, Any]],
        started_at: float,
        duration: float,
        options: StepOptions,
    ) -> SaveReport:
        """Checkpoint a successful run; never raises for a value or store problem, it warns.

        ``serialized`` holds frames already made for some output objects (by id), so they are not pickled again.
        """
        serialized = serialized or {}
        report = SaveReport()
        frames: dict[str, Serialized] = {}
        for name, value in outputs.items():
            try:
                frames[name] = serialized.get(id(value)) or serialize(value)
            except Exception as exc:
                report.unsaved[name] = f"a {type(value).__qualname__}: {type(exc).__name__}: {exc}"
        result_frame = None
        if result is not NO_RESULT:
            try:
                result_frame = serialize(result)
            except Exception:
                result_frame = None
        events_frame = serialize(events) if events else None
        finished = started_at + duration
        report.expires_at = None if options.ttl is None else finished + options.ttl
        record: dict[str, Any] = {
            "format": RECORD_FORMAT,
            "serialization": FORMAT_VERSION,
            "key": key,
            "kind": kind,
            "state": "completed",
            "code_hash": code_hash,
            "source": source,
            "inputs": dict(inputs),
            "outputs": {},
            "deleted": sorted(deleted),
            "alias_groups": alias_groups or [],
            "binds": sorted({*outputs, *aliases}),
            "shared": sorted(shared or []),
            "used_at": time.time(),
            "started_at": started_at,
            "finished_at": finished,
            "duration": duration,
            "ttl": options.ttl,
            "error": None,
            "unsaved": {},
        }
        for name, frame in frames.items():
            record["outputs"][name] = _describe(outputs[name], frame)
        for name, target in aliases.items():
            record["outputs"][name] = {**record["outputs"].get(target, {}), "alias_of": target, "size": 0}
        if report.unsaved:
            for name, reason in report.unsaved.items():
                warn(f"Step {key!r}: cannot checkpoint {name!r} ({reason}); the step will run again next time.")
            record.update(state="incomplete", outputs={}, unsaved=dict(report.unsaved))
            self._write_record(key, record, report)
            return report
        try:
            store = self.session.store
            pending: list[Serialized | None] = [*frames.values(), result_frame, events_frame]
            # Equal content is already stored under its digest: unchanged values cost no write.
            missing = {blob.digest: blob for blob in pending if blob is not None and not store.has_blob(blob.digest)}
            listener = progress_listener(self.session.activity, key, kind)
            with tracking(f"saving {key}", sum(blob.nbytes for blob in missing.values()), listener=listener):
                for blob in missing.values():
                    store.save_blob(blob.digest, blob.chunks)
                    report.written += blob.nbytes
            if result_frame is not None:
                record["result"] = _describe(result, result_frame)
            if events_frame is not None:
                record["events"] = {"blob": events_frame.digest, "size": events_frame.nbytes}
            store.save_record(key, json.dumps(record).encode())
        except StoreError as exc:
            report.error = str(exc)
            warn(f"Step {key!r}: checkpoint not saved; your results are in the namespace. {exc}")
            return report
        report.saved = sorted(frames)
        report.nbytes = sum(frame.nbytes for frame in frames.values())
        report.record = record
        return report

    def save_return(
        self,
        key: str,
        value: Any,
        *,
        code_hash: str,
        source: str,
        inputs: Mapping[str, str | None],
        started_at: float,
        duration: float,
        options: StepOptions,
    ) -> SaveReport:
        """Checkpoint a function step's return value (`@step`): `save` with one output, ``return``."""
        return self.save(
            key,
            kind="function",
            code_hash=code_hash,
            source=source,
            inputs=inputs,
            outputs={"return": value},
            aliases={},
            deleted=[],
            result=NO_RESULT,
            events=[],
            started_at=started_at,
            duration=duration,
            options=options,
        )

    def save_failure(
        self,
        key: str,
        *,
        kind: StepKind,
        code_hash: str,
        source: str,
        error: BaseException,
        started_at: float,
        duration: float,
        binds: list[str] | None = None,
    ) -> dict[str, Any]:
        """Record a failed run so that it is never restored and ``status`` can say why; returns the record."""
        record = {
            "format": RECORD_FORMAT,
            "key": key,
            "kind": kind,
            "state": "failed",
            "code_hash": code_hash,
            "source": source,
            "inputs": {},
            "outputs": {},
            "deleted": [],
            "binds": sorted(binds or []),
            "used_at": time.time(),
            "started_at": started_at,
            "finished_at": started_at + duration,
            "duration": duration,
            "ttl": None,
            "error": {"type": type(error).__name__, "message": str(error)},
            "unsaved": {},
        }
        self._write_record(key, record, SaveReport())
        return record

    def update_record(self, record: dict[str, Any]) -> None:
        """Rewrite a record after a small change (e.g. the version it made); losing this write loses nothing."""
        with contextlib.suppress(StoreError):
            self.session.store.save_record(record["key"], json.dumps(record).encode())

    def mark_used(self, record: dict[str, Any]) -> None:
        """Note that a checkpoint was just restored: `resume` replays steps in the order they were last used."""
        record["used_at"] = time.time()
        self.update_record(record)

    def _write_record(self, key: str, record: dict[str, Any], report: SaveReport) -> None:
        try:
            self.session.store.save_record(key, json.dumps(record).encode())
        except StoreError as exc:
            report.error = str(exc)
            warn(f"Step {key!r}: could not record this run in the cache. {exc}")

    def clear(self, key: str | None = None) -> int:
        """Delete one step's record (or every record and version when ``key`` is None) and the blobs nothing needs.

        Returns how many step records were removed.
        """
        store = self.session.store
        keys = [key] if key is not None else [k for k in store.list_records() if not k.startswith("__")]
        removed = sum(store.delete_record(k) for k in keys)
        for cleared in keys:
            self.session.activity.live.pop(cleared, None)
        if key is None:
            try:
                for version in [k for k in store.list_records() if k.startswith(VERSION_PREFIX)]:
                    store.delete_record(version)
            finally:
                versions_rewritten(store)
            self.session.position = Position()
        needed = set()
        for other in store.list_records():
            record = load_record(store, other)
            if record:
                needed.update(blob_ids(record))
        for blob in store.list_blobs():
            if blob not in needed:
                store.delete_blob(blob)
        return removed


def blob_ids(record: Mapping[str, Any]) -> set[str]:
    """Every blob a record needs."""
    described = [*(record.get("outputs") or {}).values(), *(record.get("changes") or {}).values()]  # a step's or a version's
    found = {meta["blob"] for meta in described if meta.get("blob")}
    for part in ("result", "events"):
        if record.get(part):
            found.add(record[part]["blob"])
    return found


def _describe(value: Any, frame: Serialized) -> dict[str, Any]:
    cls = type(value)
    module = cls.__module__
    type_name = cls.__qualname__ if module in ("builtins", "__main__") else f"{module.split('.')[0]}.{cls.__qualname__}"
    return {"blob": frame.digest, "fingerprint": frame.fingerprint, "type": type_name, "size": frame.nbytes, "summary": summarize(value)}


def describe_outputs(record: Mapping[str, Any]) -> str:
    """'df, model (76.3 MB)' for a status line."""
    outputs = record.get("outputs") or {}
    names = ", ".join(sorted(outputs)) or "nothing"
    size = sum(int(meta.get("size") or 0) for meta in outputs.values())
    return f"{names} ({format_size(size)})"
