"""Settings: where the cache lives, the default TTL, and what a code change does."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal, get_args

from ._duration import format_duration, parse_ttl
from ._errors import InvalidOption

OnChange = Literal["rerun", "warn", "ignore"]
ON_CHANGE_CHOICES: tuple[str, ...] = get_args(OnChange)
DIR_VARIABLE = "NBFLOW_DIR"


def default_dir() -> str:
    """``$NBFLOW_DIR``, else ``.nbflow`` in the working directory (beside the notebook)."""
    return str(Path(os.environ.get(DIR_VARIABLE) or ".nbflow").expanduser().absolute())


@dataclass(frozen=True)
class Config:
    """nbflow's settings; change them with ``%nbflow config name=value`` or `nbflow.configure`."""

    dir: str = field(default_factory=default_dir)
    """The cache: a directory path, or ``SCHEME://...`` for a registered store backend."""
    ttl: float | None = None
    """Default time-to-live of a step in seconds; ``None`` means never expire."""
    on_change: OnChange = "rerun"
    """Default for ``--on-change``: what a step does when its code changed."""
    mmap: bool = False
    """Default for ``--mmap``: restore large values as copy-on-write memory maps."""

    def updated(self, **changes: object) -> Config:
        """Return a copy with ``changes`` applied; values may be strings as typed in a magic."""
        known = {item.name for item in fields(self)}
        clean: dict[str, object] = {}
        for name, value in changes.items():
            name = name.replace("-", "_")
            if name not in known:
                raise InvalidOption(f"Unknown config setting {name!r}; the settings are {', '.join(sorted(known))}.")
            clean[name] = _convert(name, value)
        return replace(self, **clean)  # type: ignore[arg-type]

    def describe(self) -> str:
        """One line per setting, as shown by ``%nbflow config``."""
        return f"dir={self.dir}\nttl={format_duration(self.ttl)}\non_change={self.on_change}\nmmap={str(self.mmap).lower()}"


def _convert(name: str, value: object) -> object:
    if name == "ttl":
        return parse_ttl(value)  # type: ignore[arg-type]
    if name == "on_change":
        return check_on_change(value)
    if name == "mmap":
        return _boolean(name, value)
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise InvalidOption(f"'dir' must be a directory path (got {value!r}).")
    text = str(value)
    return text if "://" in text else str(Path(text).expanduser().absolute())


def _boolean(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise InvalidOption(f"{name!r} must be true or false (got {value!r}).")


def check_on_change(value: object) -> OnChange:
    """Return ``value`` if it is a valid ``--on-change`` choice."""
    if value not in ON_CHANGE_CHOICES:
        raise InvalidOption(f"'on_change' must be one of {', '.join(ON_CHANGE_CHOICES)} (got {value!r}).")
    return value  # type: ignore[return-value]
