"""Progress of long saves and restores: a text bar on stderr in terminals, a live line in notebooks.

The engine opens a `tracking` scope with the bytes it is about to move; the
store calls `advance` as it writes or reads them. Nothing shows unless the
operation is still running after `DELAY` seconds, so small steps stay silent.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

from ._duration import format_size

DELAY = 1.0
"""Seconds an operation runs before its bar appears."""
_REFRESH = 0.25
_WIDTH = 24


class Progress:
    """One operation's progress, drawn at most every quarter second once ``delay`` has passed.

    ``stream`` receives a carriage-return bar; without one, the bar goes to a
    notebook display when running in a kernel, else to stderr when it is a terminal.
    ``delay`` defaults to `DELAY`. ``listener(done, total)`` is called whenever the bar is drawn.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        delay: float | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        listener: Callable[[int, int], None] | None = None,
    ) -> None:
        self.label = label
        self.total = max(total, 0)
        self.done = 0
        self.delay = DELAY if delay is None else delay
        self.clock = clock
        self.started = clock()
        self.shown = False
        self._stream = stream
        self._handle: Any = None
        self._drawn_at = float("-inf")
        self._listener = listener
        self._told = False

    def advance(self, nbytes: int) -> None:
        """Count ``nbytes`` more as done, and redraw if it is time to."""
        self.done += nbytes
        now = self.clock()
        if now - self.started >= self.delay and now - self._drawn_at >= _REFRESH:
            self._drawn_at = now
            self._draw(self.line(now), final=False)
            self._tell()

    def close(self) -> None:
        """Finish the bar if one was shown."""
        if self.shown:
            self._draw(self.line(self.clock()), final=True)
        if self._told:
            self._tell()

    def _tell(self) -> None:
        if self._listener is not None:
            self._told = True
            self._listener(self.done, self.total)

    def line(self, now: float) -> str:
        """``[nbflow] restoring big: [#####.....] 45% 9.1 GB / 20.0 GB · 3.2s``."""
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = round(fraction * _WIDTH)
        bar = "#" * filled + "." * (_WIDTH - filled)
        sizes = f"{format_size(self.done)} / {format_size(self.total)}"
        return f"[nbflow] {self.label}: [{bar}] {fraction:4.0%} {sizes} · {now - self.started:.1f}s"

    def _draw(self, text: str, *, final: bool) -> None:
        stream = self._stream
        if stream is None and self._handle is None and not self.shown:
            self._handle = _notebook_handle(text)
            if self._handle is not None:
                self.shown = True
                return
        if self._handle is not None:
            self._handle.update({"text/plain": text}, raw=True)
            return
        stream = stream or (sys.stderr if _is_terminal(sys.stderr) else None)
        if stream is None:
            return
        self.shown = True
        stream.write("\r" + text + ("\n" if final else ""))
        stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _notebook_handle(text: str) -> Any:
    """A display handle in a running kernel, or ``None`` (IPython is never imported for this)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return None
    display: Any = importlib.import_module("IPython.display").display
    return display({"text/plain": text}, raw=True, display_id=True)


_current: ContextVar[Progress | None] = ContextVar("nbflow_progress", default=None)


@contextmanager
def tracking(label: str, total: int, **options: Any) -> Iterator[Progress]:
    """Make a `Progress` the one `advance` reports to, for the duration of the block."""
    progress = Progress(label, total, **options)
    token = _current.set(progress)
    try:
        yield progress
    finally:
        _current.reset(token)
        progress.close()


def advance(nbytes: int) -> None:
    """Report ``nbytes`` moved to the current `tracking` scope, if any (stores call this)."""
    progress = _current.get()
    if progress is not None:
        progress.advance(nbytes)
