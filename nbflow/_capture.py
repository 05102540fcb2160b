"""Record what a cell prints and displays while it runs, and replay it on restore."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ._cells import Captured

# Widget views point at live kernel objects that a restart destroys.
_UNREPLAYABLE = ("application/vnd.jupyter.widget-view+json",)
# Enough for tables and plots; beyond this, output is shown but not kept.
MAX_CAPTURED_BYTES = 20 * 1024 * 1024


class _Tee:
    """A text stream that writes through and keeps a copy."""

    def __init__(self, stream: TextIO, name: str, captured: Captured, budget: list[int]) -> None:
        self._stream = stream
        self._name = name
        self._captured = captured
        self._budget = budget

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        if text and self._budget[0] > 0:
            self._budget[0] -= len(text)
            events = self._captured.events
            if events and events[-1].get("name") == self._name:
                events[-1]["text"] += text
            else:
                events.append({"kind": "stream", "name": self._name, "text": text})
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def capture_output(shell: Any) -> Iterator[Captured]:
    """Tee stdout/stderr and rich display output of the code run inside, for later replay."""
    captured = Captured()
    budget = [MAX_CAPTURED_BYTES]
    publisher = shell.display_pub
    original_publish = publisher.publish
    had_override = "publish" in vars(publisher)

    def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("update") and budget[0] > 0:
            kept = {mime: value for mime, value in data.items() if mime not in _UNREPLAYABLE}
            if kept:
                budget[0] -= sum(len(str(value)) for value in kept.values())
                captured.events.append({"kind": "display", "data": kept, "metadata": dict(metadata or {})})
        return original_publish(data, metadata, *args, **kwargs)

    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = _Tee(stdout, "stdout", captured, budget)
    sys.stderr = _Tee(stderr, "stderr", captured, budget)
    publisher.publish = publish
    try:
        yield captured
    finally:
        sys.stdout, sys.stderr = stdout, stderr
        if had_override:
            publisher.publish = original_publish
        else:
            del publisher.publish


def replay(events: list[dict[str, Any]]) -> None:
    """Show recorded output again: streams to stdout/stderr, rich output through IPython's display."""
    from IPython.display import publish_display_data

    for event in events:
        if event.get("kind") == "stream":
            getattr(sys, event.get("name", "stdout"), sys.stdout).write(event.get("text", ""))
        elif event.get("kind") == "display":
            publish_display_data(event.get("data") or {}, event.get("metadata") or {})  # type: ignore[no-untyped-call]
