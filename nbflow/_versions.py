"""Versions: after each executed step, what changed in the namespace against the version before it.

A version stores only the names that changed (each as a content-addressed
entry: blob id, fingerprint, type, size, summary), the names removed, its parent
and the step that made it. The full namespace at a version is found by walking
its parents (`resolve_entries`). Versions are shared through the store; where
this process stands among them is its session's `Position`.
"""

from __future__ import annotations

import contextlib
import json
import uuid
import weakref
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import InvalidOption, StoreError
from ._session import Session
from ._store import Store

VERSION_PREFIX = "__version__:"
GENERATION_KEY = "__versions_generation__"
"""Changes whenever version records are rewritten or deleted (new ones need no announcement)."""
# Increment on version record format changes; versions of another format are ignored.
VERSION_FORMAT = 1
_ENTRY_FIELDS = ("blob", "fingerprint", "type", "size", "summary", "alias_of")
_cache: weakref.WeakKeyDictionary[Store, tuple[bytes | None, dict[str, Version]]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Version:
    """One node of the version tree."""

    id: str
    parent: str | None
    step: str
    created_at: float
    changes: dict[str, dict[str, Any]]
    """Added or changed name -> entry."""
    removed: list[str]
    added: list[str]
    changed: list[str]
    bytes_added: int
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)
    """Unique across caches: an import recognises a version it already has."""
    collected_parent: str | None = None
    """The parent this version had before gc removed it (its changes then hold its whole namespace)."""

    @property
    def number(self) -> int:
        return version_number(self.id)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": VERSION_FORMAT,
            "id": self.id,
            "uid": self.uid,
            "parent": self.parent,
            "step": self.step,
            "created_at": self.created_at,
            "changes": self.changes,
            "removed": self.removed,
            "added": self.added,
            "changed": self.changed,
            "bytes_added": self.bytes_added,
            "collected_parent": self.collected_parent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Version:
        return cls(
            id=str(data["id"]),
            parent=data.get("parent"),
            step=str(data.get("step", "")),
            created_at=float(data.get("created_at") or 0.0),
            changes=dict(data.get("changes") or {}),
            removed=list(data.get("removed") or []),
            added=list(data.get("added") or []),
            changed=list(data.get("changed") or []),
            bytes_added=int(data.get("bytes_added") or 0),
            uid=str(data.get("uid") or ""),
            collected_parent=data.get("collected_parent"),
        )

    def blobs(self) -> set[str]:
        """The blobs this version's own changes point to."""
        return {entry["blob"] for entry in self.changes.values() if entry.get("blob")}


def version_info(version: Version) -> dict[str, Any]:
    """What a `version_created` event tells about a version (no entries)."""
    return {
        "id": version.id,
        "parent": version.parent,
        "step": version.step,
        "created_at": version.created_at,
        "added": list(version.added),
        "changed": list(version.changed),
        "removed": list(version.removed),
        "bytes_added": version.bytes_added,
    }


def version_number(version_id: str) -> int:
    """3 for 'v3'; raises `InvalidOption` for anything that is not a version id."""
    if not (version_id[:1] == "v" and version_id[1:].isdigit()):
        raise InvalidOption(f"{version_id!r} is not a version id; version ids look like v3 (%nbflow versions lists them).")
    return int(version_id[1:])


def entry_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a step record's output description that a version keeps."""
    return {name: meta[name] for name in _ENTRY_FIELDS if name in meta}


def _parse(data: bytes | None) -> Version | None:
    if not data:
        return None
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != VERSION_FORMAT:
            return None
        version = Version.from_json(raw)
        version_number(version.id)
        return version
    except (ValueError, KeyError, TypeError):  # InvalidOption is a ValueError
        return None


def load_version(store: Store, version_id: str) -> Version | None:
    """One version, or ``None`` if missing or unreadable."""
    try:
        return _parse(store.load_record(VERSION_PREFIX + version_id))
    except StoreError:
        return None


def load_versions(store: Store) -> dict[str, Version]:
    """Every readable version, by id, oldest first; raises `StoreError`.

    Version records never change once written, unless gc or ``clear --all``
    rewrites or deletes them, which they announce with `versions_rewritten`:
    so the records read before are kept, and only new ones are read.
    """
    generation = store.load_record(GENERATION_KEY)
    try:
        cached_generation, cached = _cache.get(store, (None, {}))
    except TypeError:  # a store that cannot be weakly referenced or hashed: no cache
        cached_generation, cached = None, {}
    known = cached if cached_generation == generation else {}
    found = {}
    for key in store.list_records():
        if key.startswith(VERSION_PREFIX):
            version = known.get(key) or _parse(store.load_record(key))
            if version is not None and VERSION_PREFIX + version.id == key:
                found[key] = version
    with contextlib.suppress(TypeError):
        _cache[store] = (generation, found)
    return {version.id: version for version in sorted(found.values(), key=lambda version: version.number)}


def versions_rewritten(store: Store) -> None:
    """Announce that version records were rewritten or deleted, so every process reads them again."""
    store.save_record(GENERATION_KEY, uuid.uuid4().hex.encode())


def save_version(store: Store, version: Version) -> None:
    """Write (or rewrite) a version record."""
    store.save_record(VERSION_PREFIX + version.id, json.dumps(version.to_json()).encode())


def allocate(store: Store, version: Version, start: int) -> Version:
    """Store ``version`` under the first free id ``v{n}`` with n >= start (atomic where the store's add is)."""
    number = max(start, 1)
    while True:
        candidate = Version(**{**version.__dict__, "id": f"v{number}"})
        if store.add_record(VERSION_PREFIX + candidate.id, json.dumps(candidate.to_json()).encode()):
            return candidate
        number += 1


def next_number(store: Store) -> int:
    """One more than the highest version number in the store."""
    ids = [key[len(VERSION_PREFIX) :] for key in store.list_records() if key.startswith(VERSION_PREFIX)]
    return max((int(found[1:]) for found in ids if found[:1] == "v" and found[1:].isdigit()), default=0) + 1


def lineage(versions: Mapping[str, Version], version_id: str) -> list[str]:
    """``version_id`` and its ancestors, newest first; raises `InvalidOption` on a missing parent or a cycle."""
    version_number(version_id)  # a clear error for something that is not a version id
    chain: list[str] = []
    seen: set[str] = set()
    current: str | None = version_id
    while current is not None:
        if current in seen:
            raise InvalidOption(f"Version {version_id!r} has a parent cycle through {current!r}; the version history is damaged.")
        version = versions.get(current)
        if version is None:
            if current == version_id:
                raise InvalidOption(f"No version {version_id!r} in this cache; %nbflow versions lists them.")
            raise InvalidOption(f"Version {version_id!r} needs its ancestor {current!r}, which is missing; the version history is damaged.")
        seen.add(current)
        chain.append(current)
        current = version.parent
    return chain


def resolve_entries(versions: Mapping[str, Version], version_id: str | None) -> dict[str, dict[str, Any]]:
    """The namespace at ``version_id`` as name -> entry, by applying its ancestors' changes from the root."""
    names: dict[str, dict[str, Any]] = {}
    if version_id is None:
        return names
    for current in reversed(lineage(versions, version_id)):
        apply_changes(names, versions[current])
    return names


def apply_changes(names: MutableMapping[str, dict[str, Any]], version: Version) -> None:
    """Move ``names`` (a parent's namespace) forward by one version."""
    for name in version.removed:
        names.pop(name, None)
    names.update(version.changes)


def _identity(entry: Mapping[str, Any]) -> tuple[Any, Any]:
    """What makes two entries the same: the value's content, and which name's object it shares."""
    return entry.get("blob"), entry.get("alias_of")


def same_entries(first: Mapping[str, Mapping[str, Any]], second: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether two namespaces hold the same values (by content and sharing)."""
    return first.keys() == second.keys() and all(_identity(first[name]) == _identity(second[name]) for name in first)


@dataclass
class _Delta:
    added: list[str]
    changed: list[str]
    removed: list[str]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def _delta(base: Mapping[str, Mapping[str, Any]], names: Mapping[str, Mapping[str, Any]]) -> _Delta:
    return _Delta(
        added=sorted(name for name in names if name not in base),
        changed=sorted(name for name in names if name in base and _identity(base[name]) != _identity(names[name])),
        removed=sorted(name for name in base if name not in names),
    )


def _track(session: Session, record: Mapping[str, Any], namespace: Mapping[str, Any]) -> None:
    """Update the tracked step-produced names with what a step just did to the namespace.

    A name becomes step-produced when a step binds it or changes its value; a
    plain variable that only holds the same object as a step's output stays
    the user's (versions leave it alone).
    """
    names = session.position.names
    outputs: Mapping[str, Mapping[str, Any]] = record.get("outputs") or {}
    shared = set(record.get("shared") or [])
    for name in record.get("deleted") or []:
        names.pop(name, None)
    for name, meta in outputs.items():
        if meta.get("blob") and (name not in shared or name in names):
            names[name] = entry_of(meta)
    for name in [name for name in names if name not in namespace]:
        del names[name]  # deleted outside any step
    for name, entry in names.items():
        owner = entry.get("alias_of")
        if owner and (owner not in names or namespace[owner] is not namespace[name]):
            names[name] = {field: value for field, value in entry.items() if field != "alias_of"}  # no longer shared


def after_execution(session: Session, record: dict[str, Any], namespace: Mapping[str, Any], written: int) -> Version | None:
    """Create the version an executed step made (``None`` if it changed nothing) and move this process to it."""
    _track(session, record, namespace)
    position = session.position
    store = session.store
    if position.head is not None and load_version(store, position.head) is None:
        position.head, position.base = None, {}  # collected by gc, or another cache
    delta = _delta(position.base, position.names)
    if not delta:
        return None
    draft = Version(
        id="v0",
        parent=position.head,
        step=str(record["key"]),
        created_at=session.clock(),
        changes={name: dict(position.names[name]) for name in (*delta.added, *delta.changed)},
        removed=delta.removed,
        added=delta.added,
        changed=delta.changed,
        bytes_added=written,
    )
    version = allocate(store, draft, position.next_number or next_number(store))
    position.next_number = version.number + 1
    position.head = version.id
    position.base = {name: dict(entry) for name, entry in position.names.items()}
    return version


def after_restore(session: Session, record: Mapping[str, Any], namespace: Mapping[str, Any]) -> None:
    """Follow a restored step: when it lands exactly on the version it made when it ran, move this process there.

    Never raises for a store problem: losing the place in the tree loses no data.
    """
    _track(session, record, namespace)
    position = session.position
    if same_entries(position.base, position.names):
        return
    version_id = record.get("version")
    if not version_id:
        return
    try:
        version = load_version(session.store, str(version_id))
    except StoreError:
        return
    if version is None or version.parent != position.head:
        return
    candidate = {name: dict(entry) for name, entry in position.base.items()}
    apply_changes(candidate, version)
    if same_entries(candidate, position.names):
        position.head, position.base = version.id, candidate


def children(versions: Mapping[str, Version]) -> dict[str | None, list[str]]:
    """parent id (None for roots) -> child ids, oldest first."""
    tree: dict[str | None, list[str]] = {}
    for version in versions.values():
        parent = version.parent if version.parent in versions else None
        tree.setdefault(parent, []).append(version.id)
    return tree


def descendants(versions: Mapping[str, Version], version_id: str) -> list[str]:
    """Every version below ``version_id`` in the tree."""
    tree = children(versions)
    found: list[str] = []
    pending = list(tree.get(version_id, []))
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(tree.get(current, []))
    return found


def needed_blobs(versions: Mapping[str, Version], keep: Iterable[str]) -> set[str]:
    """Every blob the kept versions' full namespaces point to.

    ``keep`` must hold each kept version's parent too (gc rebases a version whose
    parent it drops): then the union of their own changes is exactly that, found
    without walking any version's ancestors.
    """
    return {blob for version_id in keep for blob in versions[version_id].blobs()}
