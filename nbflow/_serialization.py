"""Turn values into checkpoint frames and back, and fingerprint values.

The only module that pickles. A frame is a small header, the pickle stream
(protocol 5), then each out-of-band buffer (numpy and pandas data) padded to
64 bytes, so large buffers are written and read without an intermediate copy.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle
import xxhash

from ._errors import CorruptBlob

# Increment on checkpoint format changes.
FORMAT_VERSION = 1
_MAGIC = b"NBFLOW\x00"
_HEAD = struct.Struct("<7sBIQ")
_ALIGN = 64


@dataclass(frozen=True)
class Serialized:
    """A value ready to write: its frame chunks, size, digest and fingerprint."""

    chunks: Sequence[bytes | memoryview]
    nbytes: int
    digest: str
    fingerprint: str


class _StoragePickler(cloudpickle.Pickler):
    """cloudpickle that notes whether it met values whose fingerprint stream differs from their pickle.

    Those are code objects (their pickle names the file they came from) and
    non-contiguous arrays (pickled by copy, restored contiguous).
    """

    saw_code = False
    ndarray: type | None = None

    def reducer_override(self, obj: object) -> object:
        if type(obj) is types.CodeType or (type(obj) is self.ndarray and _is_strided(obj)):
            self.saw_code = True
        return super().reducer_override(obj)


class _FingerprintPickler(cloudpickle.Pickler):
    """cloudpickle whose stream does not depend on where code was defined.

    Functions and classes from a notebook carry a per-kernel file name and a
    per-process class id; after a restart they must still fingerprint the same.
    Its output is hashed, never loaded.
    """

    ndarray: type | None = None

    def reducer_override(self, obj: object) -> object:
        if type(obj) is self.ndarray and _is_strided(obj):
            # As its restored, contiguous copy will fingerprint: equal after a restart.
            return obj.copy(order="C").__reduce_ex__(5)  # type: ignore[attr-defined]
        if type(obj) is types.CodeType:
            return _stable_code, _code_identity(obj)
        if isinstance(obj, types.FunctionType) and _is_pickled_by_value(obj):
            # Not its globals' values: those are inputs of their own, and a function
            # must not look changed because a list it appends to grew.
            closure = tuple(_cell_contents(cell) for cell in obj.__closure__ or ())
            return _stable_function, (obj.__qualname__, obj.__code__, obj.__defaults__, obj.__kwdefaults__, closure, obj.__dict__ or None)
        if isinstance(obj, type) and _is_pickled_by_value(obj):
            members = tuple(
                sorted(
                    ((name, value) for name, value in vars(obj).items() if name not in _CLASS_NOISE),
                    key=lambda item: item[0],
                )
            )
            return _stable_class, (obj.__qualname__, obj.__bases__, members)
        return super().reducer_override(obj)


_CLASS_NOISE = frozenset({"__dict__", "__weakref__", "__module__", "__firstlineno__", "__static_attributes__"})


def _is_strided(array: Any) -> bool:
    """A non-contiguous numeric array (an object array pickles its items the same either way)."""
    flags = array.flags
    return not (flags.c_contiguous or flags.f_contiguous) and not array.dtype.hasobject


def _stable_code(*_parts: object) -> None:
    """Stands for a code object inside a fingerprint stream."""


def _stable_function(*_parts: object) -> None:
    """Stands for a notebook-defined function inside a fingerprint stream."""


def _cell_contents(cell: types.CellType) -> object:
    try:
        return cell.cell_contents
    except ValueError:
        return _stable_function


def _stable_class(*_parts: object) -> None:
    """Stands for a notebook-defined class inside a fingerprint stream."""


def _code_identity(code: types.CodeType) -> tuple[object, ...]:
    return (
        code.co_name,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_code,
        code.co_consts,
        code.co_names,
        code.co_varnames,
        code.co_freevars,
        code.co_cellvars,
    )


def _is_pickled_by_value(obj: object) -> bool:
    try:
        return not cloudpickle.cloudpickle._should_pickle_by_reference(obj)
    except Exception:
        return getattr(obj, "__module__", None) == "__main__"


def _pickle(value: object, pickler_class: type[cloudpickle.Pickler]) -> tuple[bytes, list[memoryview], bool]:
    buffers: list[pickle.PickleBuffer] = []
    stream = io.BytesIO()
    pickler = pickler_class(stream, protocol=5, buffer_callback=buffers.append)
    # Never imported here: if no module imported numpy, no value holds an array.
    numpy = sys.modules.get("numpy")
    pickler.ndarray = None if numpy is None else numpy.ndarray
    pickler.dump(value)
    views = [buffer.raw() for buffer in buffers]
    return stream.getvalue(), views, getattr(pickler, "saw_code", False)


def _hash(stream: bytes | memoryview, views: Sequence[memoryview]) -> str:
    hasher = xxhash.xxh3_128(stream)
    for view in views:
        hasher.update(view)
    return hasher.hexdigest()


def fingerprint(value: object) -> str:
    """A content hash of ``value`` that is stable across kernel restarts.

    Large buffers are hashed in place. Modules fingerprint by name, top-level
    sets by sorted content, and values that cannot be pickled by type only.
    """
    if isinstance(value, types.ModuleType):
        return "module:" + value.__name__
    if isinstance(value, (set, frozenset)):
        value = (type(value).__name__, _sorted(value))
    try:
        stream, views, _ = _pickle(value, _FingerprintPickler)
    except Exception:
        cls = type(value)
        return f"type:{cls.__module__}.{cls.__qualname__}"
    return _hash(stream, views)


def _sorted(items: set[Any] | frozenset[Any]) -> list[Any]:
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


def serialize(value: object) -> Serialized:
    """Pickle ``value`` into frame chunks; raises the pickling error if it cannot be pickled."""
    stream, views, saw_code = _pickle(value, _StoragePickler)
    digest = _hash(stream, views)
    stable = saw_code or isinstance(value, (set, frozenset, types.ModuleType))
    chunks: list[bytes | memoryview] = []
    offsets = []
    position = _HEAD.size + 8 * len(views) + len(stream)
    for view in views:
        padding = -position % _ALIGN
        position += padding
        offsets.append(position)
        position += view.nbytes
    header = _HEAD.pack(_MAGIC, FORMAT_VERSION, len(views), len(stream))
    header += b"".join(struct.pack("<Q", view.nbytes) for view in views)
    chunks.append(header)
    chunks.append(stream)
    cursor = len(header) + len(stream)
    for view, offset in zip(views, offsets, strict=True):
        if offset > cursor:
            chunks.append(bytes(offset - cursor))
        chunks.append(view)
        cursor = offset + view.nbytes
    return Serialized(chunks, cursor, digest, fingerprint(value) if stable else digest)


def deserialize(data: bytes | bytearray | memoryview, digest: str | None = None) -> object:
    """Load a frame written by `serialize`, checking its digest; raises `CorruptBlob`."""
    view = memoryview(data)
    if view.readonly:
        # Arrays restored over immutable bytes would be read-only (and fingerprint differently).
        view = memoryview(bytearray(view))
    if view.nbytes < _HEAD.size:
        raise CorruptBlob("the saved value is truncated")
    magic, version, count, stream_length = _HEAD.unpack_from(view, 0)
    if magic != _MAGIC:
        raise CorruptBlob("the saved value is not an nbflow checkpoint")
    if version != FORMAT_VERSION:
        raise CorruptBlob(f"the saved value has checkpoint format {version}, this nbflow reads {FORMAT_VERSION}")
    cursor = _HEAD.size
    if view.nbytes < cursor + 8 * count:
        raise CorruptBlob("the saved value is truncated")
    lengths = struct.unpack_from(f"<{count}Q", view, cursor)
    cursor += 8 * count
    stream = view[cursor : cursor + stream_length]
    cursor += stream_length
    buffers = []
    for length in lengths:
        cursor += -cursor % _ALIGN
        buffers.append(view[cursor : cursor + length])
        cursor += length
    if cursor > view.nbytes or len(stream) != stream_length:
        raise CorruptBlob("the saved value is truncated")
    if digest is not None and _hash(stream, buffers) != digest:
        raise CorruptBlob("the saved value fails its checksum")
    try:
        return pickle.loads(stream, buffers=buffers)
    except Exception as exc:
        raise CorruptBlob(f"the saved value cannot be loaded ({type(exc).__name__}: {exc})") from exc
