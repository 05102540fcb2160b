"""The exceptions and warnings nbflow raises.

::

    NbflowError(Exception)
    ├── InvalidTTL(NbflowError, ValueError)        a TTL that is not a duration
    ├── InvalidKey(NbflowError, ValueError)        an empty, malformed or unfillable step key
    ├── InvalidOption(NbflowError, ValueError)     a bad option or config value
    ├── SnapshotFormatError(NbflowError, ValueError)  a snapshot that breaks the format
    └── StoreError(NbflowError, OSError)           the store cannot be read or written
        └── CorruptBlob(StoreError)                a saved value is missing or damaged

    NbflowWarning(UserWarning)                     degraded but non-fatal: the work goes on
"""

from __future__ import annotations

import warnings as _warnings


class NbflowError(Exception):
    """Root of every error nbflow raises."""


class InvalidTTL(NbflowError, ValueError):
    """A TTL that is not a duration like '30s', '6h', '7d' or 'never'."""


class InvalidKey(NbflowError, ValueError):
    """A step key that is empty, malformed, or names an undefined variable."""


class InvalidOption(NbflowError, ValueError):
    """A bad option, config name or config value."""


class SnapshotFormatError(NbflowError, ValueError):
    """A snapshot that does not follow the snapshot format."""


class StoreError(NbflowError, OSError):
    """The store cannot be opened, read or written."""


class CorruptBlob(StoreError):
    """A saved value is missing, truncated or fails its checksum."""


class NbflowWarning(UserWarning):
    """Something went wrong, but your code ran and your namespace is intact."""


def warn(message: str) -> None:
    """Issue an `NbflowWarning` shown as one line (``nbflow: NbflowWarning: ...``), with no source excerpt."""
    _warnings.warn_explicit(message, NbflowWarning, filename="nbflow", lineno=0, module="nbflow")


# Show every nbflow warning, not only the first per line; appended, so user and test filters still win.
_warnings.filterwarnings("always", category=NbflowWarning, append=True)
