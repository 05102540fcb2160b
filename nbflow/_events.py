"""Step events: callbacks told when a step starts, completes, is restored, fails or is skipped, and when a version is made.

Events are emitted in the thread that runs the step, in this order for an
executed step: ``step_started``, any ``step_progress``, then ``step_completed``
(or ``step_failed``), then ``version_created`` when the step changed the
namespace. A restore emits ``step_restored``; `resume` emits ``step_skipped``
for each step it cannot restore. A subscriber that raises is reported as an
`NbflowWarning` and never breaks the step.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ._errors import InvalidOption, warn

EventKind = Literal["step_started", "step_progress", "step_completed", "step_restored", "step_failed", "step_skipped", "version_created"]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)

LiveState = Literal["running", "completed", "incomplete", "restored", "failed"]
_LIVE_STATE: dict[str, LiveState] = {
    "step_started": "running",
    "step_completed": "completed",
    "step_restored": "restored",
    "step_failed": "failed",
}


@dataclass(frozen=True)
class StepEvent:
    """Something that happened to one step; ``state`` is the step as `snapshot` shows it, right after."""

    kind: EventKind
    key: str
    state: Mapping[str, Any]
    """The step's snapshot entry (state, kind, outputs, started_at, finished_at, duration, ttl, expires_at, error, version),
    its ``state`` being what this event left it as: running, completed, incomplete, restored, failed (for
    ``step_skipped``, the checkpoint's own state)."""
    time: float
    reason: str = ""
    """Why the step ran (``step_started``), why it was skipped, or its error (``step_failed``)."""
    version: Mapping[str, Any] | None = None
    """For ``version_created``: id, parent, step, created_at, added, changed, removed, bytes_added."""
    progress: tuple[int, int] | None = None
    """For ``step_progress``: bytes done and total while a checkpoint is written or read."""

    def to_json(self) -> dict[str, Any]:
        """The event as JSON-serializable data."""
        return {
            "kind": self.kind,
            "key": self.key,
            "state": dict(self.state),
            "time": self.time,
            "reason": self.reason,
            "version": None if self.version is None else dict(self.version),
            "progress": None if self.progress is None else list(self.progress),
        }


Subscriber = Callable[[StepEvent], object]


@dataclass
class _Subscription:
    callback: Subscriber
    kinds: frozenset[str]


_subscriptions: list[_Subscription] = []


def subscribe(callback: Subscriber, *, kinds: Iterable[str] | None = None) -> Callable[[], None]:
    """Call ``callback(event)`` for every step event (or only those of ``kinds``); returns a function that unsubscribes.

    >>> seen = []
    >>> unsubscribe = subscribe(seen.append, kinds=["step_completed"])
    >>> unsubscribe()
    """
    if not callable(callback):
        raise InvalidOption(f"subscribe() takes a callable that receives a StepEvent (got {callback!r}).")
    wanted = frozenset(EVENT_KINDS if kinds is None else ([kinds] if isinstance(kinds, str) else kinds))
    unknown = sorted(wanted - set(EVENT_KINDS))
    if unknown:
        raise InvalidOption(f"Unknown event kind {unknown[0]!r}; the kinds are: {', '.join(EVENT_KINDS)}.")
    subscription = _Subscription(callback, wanted)
    _subscriptions.append(subscription)

    def unsubscribe() -> None:
        """Stop the callback (calling this again does nothing)."""
        if subscription in _subscriptions:
            _subscriptions.remove(subscription)

    return unsubscribe


def has_subscribers() -> bool:
    """Whether any callback listens (emitters skip building event data when none does)."""
    return bool(_subscriptions)


@dataclass
class Activity:
    """What steps did in this process: the states a cache cannot know (running, restored here)."""

    live: dict[str, tuple[LiveState, float]] = field(default_factory=dict)
    """Step key -> (state, since when)."""
    progress: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Step key -> (bytes done, total) while its checkpoint is moving slowly."""


def emit(
    activity: Activity,
    kind: EventKind,
    key: str,
    state: Callable[[], dict[str, Any]],
    *,
    reason: str = "",
    version: Mapping[str, Any] | None = None,
    progress: tuple[int, int] | None = None,
) -> None:
    """Record the event in ``activity`` and tell the subscribers; ``state()`` builds the step entry only when someone listens."""
    now = time.time()
    if kind == "step_progress" and progress is not None:
        activity.progress[key] = progress
    elif kind in _LIVE_STATE:
        activity.progress.pop(key, None)
    if kind in _LIVE_STATE:
        activity.live[key] = (_LIVE_STATE[kind], now)
    listeners = [subscription for subscription in _subscriptions if kind in subscription.kinds]
    if not listeners:
        return
    try:
        entry = state()
    except Exception as exc:  # noqa: BLE001 - e.g. the store went away: still tell, never raise into the step
        entry = {**running_entry("cell", None), "state": "unknown", "error": {"type": type(exc).__name__, "message": str(exc)}}
    event = StepEvent(kind, key, entry, now, reason, version, progress)
    for subscription in listeners:
        try:
            subscription.callback(event)
        except Exception as exc:  # noqa: BLE001 - a subscriber must never break a step
            _report(subscription.callback, event, exc)


def running_entry(kind: str, started_at: float | None) -> dict[str, Any]:
    """The snapshot entry of a step that is running and has no checkpoint of this run yet."""
    return {
        "state": "running",
        "kind": kind,
        "outputs": {},
        "started_at": started_at,
        "finished_at": None,
        "duration": None,
        "ttl": None,
        "expires_at": None,
        "code_hash": None,
        "error": None,
        "version": None,
    }


def progress_listener(activity: Activity, key: str, kind: str) -> Callable[[int, int], None]:
    """A `Progress` listener that emits ``step_progress`` for ``key``."""
    started_at = time.time()

    def listener(done: int, total: int) -> None:
        emit(activity, "step_progress", key, lambda: running_entry(kind, started_at), progress=(done, total))

    return listener


def _report(callback: Subscriber, event: StepEvent, error: Exception) -> None:
    name = getattr(callback, "__qualname__", None) or repr(callback)
    message = f"nbflow: event subscriber {name} raised {type(error).__name__}: {error} on {event.kind} for {event.key!r}; the step went on."
    try:
        warn(message)
    except Warning:  # warnings turned into errors: still say it, without raising into the step
        print(message, file=sys.stderr)
