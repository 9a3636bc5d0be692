"""When ``mayak up`` starts a stopped child again, and when it gives up.

A worker stops on purpose, committing nothing, when it cannot finish a batch safely (the key
store unreachable past ``MAYAK_KEY_STORE_TIMEOUT_S``, a failed landing): what it had not
committed is read again by its next run, so starting it again loses nothing and counts
nothing twice. A child that keeps stopping is a fault to show, not to hide: after ``limit``
restarts within ``window_s`` the stack stops with the child's exit code and log.
"""

from __future__ import annotations

from collections import deque

from mayak.clock import SYSTEM_CLOCK, Clock


class RestartPolicy:
    """Counts one child's restarts: allows at most ``limit`` within any ``window_s`` seconds,
    each after a wait that doubles from ``first_wait_s`` (a child stopping at once again does
    not spin the machine)."""

    def __init__(
        self,
        limit: int = 5,
        window_s: float = 600.0,
        first_wait_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.first_wait_s = first_wait_s
        self._clock = clock or SYSTEM_CLOCK
        self._times: deque[float] = deque()

    def _recent(self) -> int:
        now = self._clock.monotonic()
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        return len(self._times)

    def next_wait(self) -> float | None:
        """Seconds to wait before the next restart, or None: too many restarts, give up."""
        recent = self._recent()
        if recent >= self.limit:
            return None
        return self.first_wait_s * 2**recent

    def restarted(self) -> int:
        """Note a restart; returns how many fall in the window, this one included."""
        self._times.append(self._clock.monotonic())
        return self._recent()


def describe(name: str, code: int | None, count: int, policy: RestartPolicy) -> str:
    """The line ``mayak up`` prints when it starts ``name`` again (``code`` None: the
    broker, whose exit code ``LocalBroker`` does not keep)."""
    minutes = policy.window_s / 60
    how = "stopped" if code is None else f"exited with code {code}"
    return (
        f"the {name} {how}; started it again "
        f"(restart {count} of at most {policy.limit} in {minutes:g} min)"
    )
