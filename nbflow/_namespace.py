"""How a cell changed the namespace (outputs, aliases, deletions), and re-attaching restored functions to it."""

from __future__ import annotations

import re
import types
import weakref
from collections.abc import Container, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ._serialization import Serialized, fingerprint, serialize

# Names IPython manages itself (output history, input history, dunders, helpers).
_MANAGED = re.compile(r"^(_+|_i+\d*|_\d+|_[iod]h|__\w+__|In|Out|get_ipython|exit|quit)$")
# Aliasing and in-place change only matter for objects that can change in place.
_ATOMS = (type(None), bool, int, float, complex, str, bytes, range, types.ModuleType)
_MAX_NESTING = 32


def is_frozen(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` can never change in place: an atom, or a tuple or frozenset of frozen values.

    A tuple holding a list is not frozen: appending to the list changes the tuple's content.
    """
    if isinstance(value, _ATOMS):
        return True
    if isinstance(value, (tuple, frozenset)) and depth < _MAX_NESTING:
        return all(is_frozen(item, depth + 1) for item in value)
    return False


def is_managed(name: str, hidden: Container[str] = ()) -> bool:
    """Whether ``name`` belongs to IPython rather than to the user's analysis."""
    return name in hidden or bool(_MANAGED.match(name))


@dataclass
class Before:
    """The namespace just before a cell runs."""

    ids: dict[str, int]
    """Which object each name held."""
    inputs: dict[str, Any]
    """The input objects themselves: a cell may mutate one, then rebind its name."""
    holders: dict[int, list[str]]
    """For each input object, every name that held it."""
    witnesses: dict[str, Any] = field(default_factory=dict)
    """For names the cell may rebind: a weak reference to the object, or the object itself when it
    cannot be weakly referenced. A rebinding can free the object and a new one take its id; a dead
    weak reference (or a kept object) tells the two apart."""

    def same_object(self, name: str, value: Any) -> bool:
        """Whether ``name`` still holds the very object it held before the run."""
        if self.ids.get(name) != id(value):
            return False
        witness = self.witnesses.get(name)
        if isinstance(witness, weakref.ref):
            return witness() is value
        return True


def observe(namespace: Mapping[str, Any], input_names: list[str], hidden: Container[str] = (), binds: Iterable[str] = ()) -> Before:
    """Note the namespace's state before a cell runs (one pass over its names, no copying).

    Objects held by names in ``binds`` that cannot be weakly referenced (lists,
    dicts, ...) are kept alive until the run ends, so their ids cannot be reused.
    """
    witnesses: dict[str, Any] = {}
    for name in binds:
        if name in namespace:
            value = namespace[name]
            try:
                witnesses[name] = weakref.ref(value)
            except TypeError:
                witnesses[name] = value
    inputs = {name: namespace[name] for name in input_names if name in namespace}
    wanted = {id(value) for value in inputs.values()}
    holders: dict[int, list[str]] = {}
    ids = {}
    for name, value in namespace.items():
        ids[name] = id(value)
        if id(value) in wanted and not is_managed(name, hidden):
            holders.setdefault(id(value), []).append(name)
    return Before(ids, inputs, holders, witnesses)


@dataclass
class Changes:
    """What running a cell did to the namespace."""

    outputs: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    """Output name -> the output name holding the same object (saved once, restored as one object)."""
    deleted: list[str] = field(default_factory=list)
    unchanged: dict[str, str | None] = field(default_factory=dict)
    """Names the source binds that the run left as they were: their state is an input too."""
    alias_groups: list[list[str]] = field(default_factory=list)
    """For each mutable input object, the names that held it: they must still share it for a restore."""
    shared: list[str] = field(default_factory=list)
    """Outputs the run neither bound nor changed: names that only hold the same object as one it bound."""
    frames: dict[int, Serialized] = field(default_factory=dict)
    """Input objects serialized to see whether the run changed them, by id: saving reuses them."""


def _changed(value: Any, before: str | None, frames: dict[int, Serialized]) -> bool:
    """Whether an input object's content changed in the run; a changed one's frame is kept, so saving never pickles it again.

    Functions and classes fingerprint by their code, not by their saved frame: hashing them once is cheaper.
    """
    if isinstance(value, (types.FunctionType, type)):
        return fingerprint(value) != before
    try:
        frame = serialize(value)
    except Exception:
        return fingerprint(value) != before  # cannot be pickled: compared by type
    if frame.fingerprint == before:
        return False
    frames[id(value)] = frame
    return True


def find_changes(
    binds: frozenset[str], namespace: Mapping[str, Any], before: Before, inputs: Mapping[str, str | None], hidden: Container[str] = ()
) -> Changes:
    """Compare the namespace after a run with `Before`.

    Outputs are the names that are new or name another object, every name
    holding an input object whose content changed (in-place mutation, found on
    the objects themselves, so mutating then rebinding is seen), and other names
    for the same mutable objects. A name the source binds but this run did not
    rebind (an ``if`` not taken, an empty ``for``) is not an output: its current
    state becomes an input, so the checkpoint only holds while it is the same.
    """
    changes = Changes()
    outputs = {
        name
        for name, value in namespace.items()
        if not is_managed(name, hidden) and not before.same_object(name, value)
    }
    bound = set(outputs)
    for name in sorted(binds):
        if is_managed(name, hidden) or name in outputs or name in inputs:
            continue
        if name in namespace:
            changes.unchanged[name] = fingerprint(namespace[name])
        elif name not in before.ids:
            changes.unchanged[name] = None
    # An unchanged mutable bind may really be a rebind to an equal object that took the
    # freed object's id; which names share it must then hold for a restore, as for inputs.
    kept = {id(namespace[name]) for name in changes.unchanged if name in namespace and not is_frozen(namespace[name])}
    if kept:
        sharing: dict[int, list[str]] = {}
        for name, value in namespace.items():
            if id(value) in kept and not is_managed(name, hidden):
                sharing.setdefault(id(value), []).append(name)
        changes.alias_groups.extend(sorted(group) for group in sharing.values())
    mutated: set[int] = set()
    grouped: set[int] = set()
    for name, value in before.inputs.items():
        if id(value) in grouped or is_frozen(value):
            continue
        grouped.add(id(value))
        # Which names share a mutable input decides what executing does to them
        # (mutating it, binding another name to it): a restore needs the same sharing.
        changes.alias_groups.append(sorted(before.holders.get(id(value), [name])))
        if inputs.get(name) is not None and _changed(value, inputs[name], changes.frames):
            mutated.add(id(value))
    outputs |= {name for name, value in namespace.items() if id(value) in mutated and not is_managed(name, hidden)}
    owners: dict[int, str] = {}
    for name in sorted(outputs):
        value = namespace[name]
        if not is_frozen(value):
            owners.setdefault(id(value), name)
    outputs |= {name for name, value in namespace.items() if id(value) in owners and not is_managed(name, hidden)}
    for name in sorted(outputs):
        owner = owners.get(id(namespace[name]))
        if owner is not None and owner != name:
            changes.aliases[name] = owner
    changes.outputs = sorted(outputs)
    changes.shared = sorted(name for name in outputs if name not in bound and id(namespace[name]) not in mutated)
    changes.deleted = sorted(name for name in before.ids if name not in namespace and not is_managed(name, hidden))
    return changes


def broken_alias_group(groups: list[list[str]], namespace: Mapping[str, Any], hidden: Container[str] = ()) -> str | None:
    """Say which recorded group of names no longer shares one object, or ``None`` if all still do."""
    if not groups:
        return None
    anchors = {id(namespace[group[0]]) for group in groups if group[0] in namespace}
    holders: dict[int, list[str]] = {}
    for name, value in namespace.items():
        if id(value) in anchors and not is_managed(name, hidden):
            holders.setdefault(id(value), []).append(name)
    for group in groups:
        if group[0] not in namespace:
            return f"input {group[0]!r} is no longer defined"
        current = sorted(holders[id(namespace[group[0]])])
        if current != group:
            return f"the names sharing {group[0]!r}'s object changed (now {', '.join(current)}; then {', '.join(group)})"
    return None


def apply_restore(values: dict[str, Any], deleted: list[str], namespace: MutableMapping[str, Any]) -> None:
    """Put a checkpoint's values into ``namespace``: drop the names the step deleted, then bind its outputs."""
    for name in deleted:
        namespace.pop(name, None)
    attach_functions(values, namespace)
    namespace.update(values)


def attach_functions(values: dict[str, Any], namespace: MutableMapping[str, Any]) -> None:
    """Make restored notebook functions and classes read and write ``namespace`` as their globals.

    cloudpickle rebuilds a function defined in a notebook with a private copy of
    the globals it used; executing the ``def`` would have bound it to the
    notebook's namespace, so that is what a restore must do too.
    """
    if not isinstance(namespace, dict):
        return
    module = namespace.get("__name__", "__main__")
    replaced: dict[int, Any] = {}
    for name, value in values.items():
        values[name] = _attach(value, namespace, module, replaced)


def _attach(value: Any, namespace: dict[str, Any], module: str, replaced: dict[int, Any]) -> Any:
    if id(value) in replaced:
        return replaced[id(value)]
    result = value
    if isinstance(value, types.FunctionType):
        if value.__module__ == module and value.__globals__ is not namespace:
            result = _rebind(value, namespace)
    elif isinstance(value, type):
        if value.__module__ == module:
            _attach_class(value, namespace, module, replaced)
    elif getattr(type(value), "__module__", None) == module:
        _attach_class(type(value), namespace, module, replaced)
    replaced[id(value)] = result
    return result


def _attach_class(cls: type, namespace: dict[str, Any], module: str, replaced: dict[int, Any]) -> None:
    if id(cls) in replaced:
        return
    replaced[id(cls)] = cls
    for attribute, member in list(vars(cls).items()):
        if isinstance(member, (staticmethod, classmethod)):
            function = member.__func__
            if isinstance(function, types.FunctionType) and function.__globals__ is not namespace:
                setattr(cls, attribute, type(member)(_rebind(function, namespace)))
        elif isinstance(member, property):
            parts: list[Any] = [member.fget, member.fset, member.fdel]
            fget, fset, fdel = (_rebind(part, namespace) if isinstance(part, types.FunctionType) else part for part in parts)
            setattr(cls, attribute, property(fget, fset, fdel, member.__doc__))
        elif isinstance(member, types.FunctionType) and member.__globals__ is not namespace:
            setattr(cls, attribute, _rebind(member, namespace))


def _rebind(function: types.FunctionType, namespace: dict[str, Any]) -> types.FunctionType:
    rebound = types.FunctionType(function.__code__, namespace, function.__name__, function.__defaults__, function.__closure__)
    rebound.__kwdefaults__ = function.__kwdefaults__
    rebound.__qualname__ = function.__qualname__
    rebound.__doc__ = function.__doc__
    rebound.__module__ = function.__module__
    rebound.__annotations__ = dict(function.__annotations__)
    rebound.__dict__.update(function.__dict__)
    return rebound
