"""Validate step keys and fill key templates such as ``fit:{alpha}``."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

from ._errors import InvalidKey

MAX_KEY_LENGTH = 200
_FORBIDDEN = re.compile(r"[\s\x00-\x1f\x7f]")
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def template_fields(template: str) -> list[str]:
    """Return the variable names a key template reads, in order.

    >>> template_fields("fit:{alpha}:{model}")
    ['alpha', 'model']
    """
    validate_key(template, template=True)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise InvalidKey(f"Key template {template!r} is malformed ({exc}); write placeholders as {{name}}.") from exc
    fields = []
    for _literal, field, _spec, conversion in parsed:
        if field is None:
            continue
        if not _FIELD.match(field) or conversion:
            raise InvalidKey(
                f"Key template {template!r} has placeholder {{{field}}}: placeholders must be plain "
                "variable names like {alpha} (a format spec such as {alpha:.2f} is allowed)."
            )
        fields.append(field)
    return fields


def render_key(template: str, values: Mapping[str, object]) -> str:
    """Fill a key template from ``values`` and validate the result.

    >>> render_key("fit:{alpha}", {"alpha": 0.5})
    'fit:0.5'
    """
    fields = template_fields(template)
    if not fields:
        return template
    missing = [name for name in fields if name not in values]
    if missing:
        raise InvalidKey(
            f"Key template {template!r} names undefined variable {missing[0]!r}: define it before this step, or use a fixed key."
        )
    try:
        key = template.format_map({name: values[name] for name in fields})
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"Cannot fill key template {template!r}: {exc}.") from exc
    validate_key(key)
    return key


def validate_key(key: str, *, template: bool = False) -> str:
    """Return ``key`` if it is a valid step key, else raise `InvalidKey`."""
    what = "key template" if template else "key"
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"A step needs a {what}, such as %%step load_data (got {key!r}).")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"A step {what} is at most {MAX_KEY_LENGTH} characters (got {len(key)}).")
    if _FORBIDDEN.search(key):
        raise InvalidKey(f"A step {what} cannot contain whitespace or control characters (got {key!r}).")
    if key.startswith("-"):
        raise InvalidKey(f"A step {what} cannot start with '-' (got {key!r}); options come after the key.")
    if key.startswith("__"):
        raise InvalidKey(f"Step keys starting with '__' are reserved for nbflow (got {key!r}).")
    return key
