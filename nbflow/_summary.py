"""Short, cheap descriptions of values (for versions) and of how one value differs from another (for diffs).

numpy and pandas are never imported here: a value of theirs means the user
already imported them, so their modules are taken from ``sys.modules``.
"""

from __future__ import annotations

import reprlib
import sys
from collections.abc import Mapping
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 6
_SCALARS = (bool, int, float, complex, str, bytes, type(None))
_MAX_COLUMNS = 200


def short_repr(value: object, limit: int = 80) -> str:
    """A one-line repr of at most ``limit`` characters; never raises."""
    try:
        text = _REPR.repr(value)
    except Exception:
        text = f"<{type(value).__qualname__}>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: object) -> str:
    module = type(value).__module__.split(".")[0]
    name = type(value).__name__
    if module == "numpy" and name == "ndarray":
        return "ndarray"
    if module == "pandas" and name in ("DataFrame", "Series"):
        return name
    if isinstance(value, _SCALARS):
        return "scalar"
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return "container"
    return "other"


def summarize(value: object) -> dict[str, Any]:
    """What a version records about a value besides its blob: a short repr and, for data, its shape."""
    kind = _kind(value)
    try:
        if kind == "ndarray":
            return {"repr": f"ndarray {value.dtype} {tuple(value.shape)}", "shape": list(value.shape), "dtype": str(value.dtype)}  # type: ignore[attr-defined]
        if kind == "DataFrame":
            columns = [str(column) for column in value.columns[:_MAX_COLUMNS]]  # type: ignore[attr-defined]
            shape = list(value.shape)  # type: ignore[attr-defined]
            return {
                "repr": f"DataFrame {shape[0]}x{shape[1]} [{', '.join(columns[:6])}{', ...' if shape[1] > 6 else ''}]",
                "shape": shape,
                "columns": columns,
            }
        if kind == "Series":
            return {"repr": f"Series {value.name!r} {value.dtype} ({len(value)},)", "shape": [len(value)], "dtype": str(value.dtype)}  # type: ignore[arg-type, attr-defined]
        if kind == "container":
            return {"repr": short_repr(value), "len": len(value)}  # type: ignore[arg-type]
    except Exception:
        pass
    return {"repr": short_repr(value)}


def describe_change(old: Mapping[str, Any], new: Mapping[str, Any], load: Any = None) -> str:
    """How a value changed, from its two version entries; ``load(entry)`` reads a value when the summary needs data.

    numpy: shape, dtype and how many elements differ; pandas: shape, columns
    added or removed and rows changed; scalars and strings: old -> new;
    containers: the length change.
    """
    before, after = old.get("summary") or {}, new.get("summary") or {}
    if old.get("type") != new.get("type"):
        return f"{old.get('type')} -> {new.get('type')}: {after.get('repr', '?')}"
    kind = new.get("type", "")
    if kind == "numpy.ndarray":
        return _describe_arrays(before, after, old, new, load)
    if kind == "pandas.DataFrame":
        return _describe_frames(before, after, old, new, load)
    if "len" in before and "len" in after:
        delta = after["len"] - before["len"]
        change = f"{before['len']} -> {after['len']} items" if delta else f"{after['len']} items, contents changed"
        return change
    return f"{before.get('repr', '?')} -> {after.get('repr', '?')}"


def _describe_arrays(before: Mapping[str, Any], after: Mapping[str, Any], old: Any, new: Any, load: Any) -> str:
    parts = []
    if before.get("shape") != after.get("shape"):
        parts.append(f"shape {tuple(before.get('shape') or ())} -> {tuple(after.get('shape') or ())}")
    if before.get("dtype") != after.get("dtype"):
        parts.append(f"dtype {before.get('dtype')} -> {after.get('dtype')}")
    if not parts and load is not None:
        differing = _count_differing(load(old), load(new))
        if differing is not None:
            parts.append(f"{differing[0]:,} of {differing[1]:,} elements differ")
    return "; ".join(parts) or "contents changed"


def _count_differing(first: Any, second: Any) -> tuple[int, int] | None:
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return None
    try:
        unequal = first != second
        if first.dtype.kind in "fc":
            unequal &= ~(numpy.isnan(first) & numpy.isnan(second))
        return int(numpy.count_nonzero(unequal)), int(first.size)
    except Exception:
        return None


def _describe_frames(before: Mapping[str, Any], after: Mapping[str, Any], old: Any, new: Any, load: Any) -> str:
    parts = []
    if before.get("shape") != after.get("shape"):
        parts.append(f"shape {tuple(before.get('shape') or ())} -> {tuple(after.get('shape') or ())}")
    old_columns, new_columns = list(before.get("columns") or []), list(after.get("columns") or [])
    added = [column for column in new_columns if column not in old_columns]
    removed = [column for column in old_columns if column not in new_columns]
    if added:
        parts.append("columns added: " + ", ".join(added))
    if removed:
        parts.append("columns removed: " + ", ".join(removed))
    if load is not None:
        rows = _rows_changed(load(old), load(new))
        if rows:
            parts.append(rows)
    return "; ".join(parts) or "contents changed"


def _rows_changed(first: Any, second: Any) -> str | None:
    """'3 rows changed, 2 added, 1 removed' by index label, over the columns both frames have."""
    try:
        common = first.index.intersection(second.index)
        added = len(second.index.difference(first.index))
        removed = len(first.index.difference(second.index))
        columns = [column for column in second.columns if column in first.columns]
        if first.index.has_duplicates or second.index.has_duplicates:
            return None
        left = first.loc[common, columns]
        right = second.loc[common, columns]
        unequal = (left != right) & ~(left.isna() & right.isna())
        changed = int(unequal.any(axis=1).sum())
    except Exception:
        return None
    parts = [f"{changed:,} rows changed"]
    if added:
        parts.append(f"{added:,} added")
    if removed:
        parts.append(f"{removed:,} removed")
    return ", ".join(parts)
