"""Time travel: make the namespace what it was at a version."""

from __future__ import annotations

from collections.abc import Container, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ._engine import Engine
from ._errors import CorruptBlob, NbflowError
from ._history import load_entries
from ._namespace import attach_functions, is_managed
from ._serialization import fingerprint
from ._versions import descendants, lineage, load_versions, resolve_entries


@dataclass
class TravelReport:
    """What `resume("vN")` did."""

    version: str
    restored: list[str] = field(default_factory=list)
    """Names read back from the cache."""
    kept: list[str] = field(default_factory=list)
    """Names that already held their value at the version (not read again)."""
    removed: list[str] = field(default_factory=list)
    """Names that steps introduced after the version."""
    left_alone: list[str] = field(default_factory=list)
    """Names steps introduced after the version that were changed outside any step since."""

    def __str__(self) -> str:
        lines = [f"nbflow: the namespace is now at {self.version}; steps you run next branch from it."]
        if self.restored:
            lines.append(f"  restored: {', '.join(self.restored)}")
        if self.kept:
            lines.append(f"  already at {self.version}: {', '.join(self.kept)}")
        if self.removed:
            lines.append(f"  removed (made after {self.version}): {', '.join(self.removed)}")
        if self.left_alone:
            lines.append(f"  left alone (made after {self.version}, changed outside steps since): {', '.join(self.left_alone)}")
        return "\n".join(lines)


def resume_version(engine: Engine, version_id: str, namespace: MutableMapping[str, Any], hidden: Container[str] = ()) -> TravelReport:
    """Restore the step-produced names to their values at ``version_id``; drop names steps made after it.

    "After it" means in its descendants, or left in the namespace by this kernel's steps.
    Names no step produced are left alone. Every value is read before the
    namespace is touched, so a damaged cache changes nothing.
    """
    session = engine.session
    versions = load_versions(session.store)
    lineage(versions, version_id)  # a clear error for an unknown or damaged version
    target = resolve_entries(versions, version_id)
    report = TravelReport(version_id)
    # Values steps left after the version: in its descendants, or in this kernel on whatever branch.
    left_by_steps: dict[str, set[str]] = {}
    for descendant in descendants(versions, version_id):
        for name, entry in versions[descendant].changes.items():
            left_by_steps.setdefault(name, set()).add(entry.get("fingerprint", ""))
    for name, entry in session.position.names.items():
        left_by_steps.setdefault(name, set()).add(entry.get("fingerprint", ""))
    for name in sorted(left_by_steps):
        if name in target or name not in namespace or is_managed(name, hidden):
            continue
        if fingerprint(namespace[name]) in left_by_steps[name]:
            report.removed.append(name)
        else:
            report.left_alone.append(name)  # the user changed it since: theirs now
    wanted = {}
    for name, entry in target.items():
        # An equal value is not enough where the name shared its owner's object: it must share it still.
        owner = entry.get("alias_of")
        apart = owner in target and namespace.get(str(owner)) is not namespace.get(name)
        if name in namespace and not apart and fingerprint(namespace[name]) == entry.get("fingerprint"):
            report.kept.append(name)
        else:
            wanted[name] = entry
    # Names that shared one object come back as one object: read the whole group or none of it.
    grown = True
    while grown:
        grown = False
        for name, entry in target.items():
            owner = entry.get("alias_of")
            if owner in target and (name in wanted) != (owner in wanted):
                for member in (name, str(owner)):
                    if member not in wanted:
                        wanted[member] = target[member]
                        report.kept.remove(member)
                grown = True
    try:
        values = load_entries(engine, wanted)
    except CorruptBlob as exc:
        raise NbflowError(f"Cannot restore {version_id}: {exc} The namespace is unchanged.") from exc
    for name in report.removed:
        namespace.pop(name, None)
    attach_functions(values, namespace)
    namespace.update(values)
    report.restored = sorted(values)
    report.kept.sort()
    position = session.position
    position.head = version_id
    position.base = {name: dict(entry) for name, entry in target.items()}
    position.names = {name: dict(entry) for name, entry in target.items()}
    return report
