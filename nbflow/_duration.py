"""Parse and format durations (TTLs) and byte sizes."""

from __future__ import annotations

import re

from ._errors import InvalidTTL

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_NEVER = {"never", "none", "forever", "inf"}


def parse_ttl(text: str | float | int | None) -> float | None:
    """Return a TTL in seconds, or ``None`` for 'never'.

    >>> parse_ttl("15m"), parse_ttl("2w"), parse_ttl(90), parse_ttl("never")
    (900.0, 1209600.0, 90.0, None)
    """
    if text is None:
        return None
    if isinstance(text, bool):
        raise InvalidTTL(_message(text))
    if isinstance(text, (int, float)):
        if text <= 0 or text != text:
            raise InvalidTTL(_message(text))
        return float(text)
    if text.strip().lower() in _NEVER:
        return None
    match = _DURATION.match(text)
    if not match:
        raise InvalidTTL(_message(text))
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise InvalidTTL(_message(text))
    return seconds


def _message(value: object) -> str:
    return f"'ttl' must be a positive duration like '30s', '15m', '6h', '7d', '2w', a number of seconds, or 'never' (got {value!r})."


def format_duration(seconds: float | None) -> str:
    """Format seconds for people: '0.42s', '3m 05s', '2h 10m', '3d 4h', or 'never'.

    >>> format_duration(0.4213), format_duration(185), format_duration(None)
    ('0.42s', '3m 05s', 'never')
    """
    if seconds is None:
        return "never"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def format_size(nbytes: int) -> str:
    """Format a byte count: '512 B', '3.4 KB', '76.3 MB', '1.02 GB'.

    >>> format_size(512), format_size(80_000_000)
    ('512 B', '80.0 MB')
    """
    if nbytes < 1000:
        return f"{nbytes} B"
    amount = float(nbytes)
    for unit in ("KB", "MB", "GB", "TB"):
        amount /= 1000
        if amount < 1000 or unit == "TB":
            return f"{amount:.1f} {unit}" if amount < 100 else f"{amount:.0f} {unit}"
    raise AssertionError("unreachable")
