"""Progress of a long command on standard error: a live percentage on a terminal, a few lines otherwise."""

from __future__ import annotations

import sys
import time


class ConsoleProgress:
    """``progress(step, done, total)`` and ``progress.step(message)`` for the commands' long work.

    On a terminal the percentage updates in place; otherwise (a log, a pipe) one line is
    printed per quarter, so logs stay short. ``unit`` (e.g. ``"tiles"``) adds
    ``(done/total unit)`` to each line. ``stream`` defaults to the ``sys.stderr`` of the
    moment the object is made, not of the moment this module was imported.
    """

    def __init__(self, quiet: bool = False, stream=None, unit: str = ""):
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.unit = unit
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last: tuple[str, int] = ("", -1)
        self._started = time.monotonic()

    def step(self, message: str) -> None:
        """Announce a step that has no measurable length."""
        if not self.quiet:
            self._finish_line()
            print(f"[{time.monotonic() - self._started:6.1f} s] {message}", file=self.stream, flush=True)

    def __call__(self, step: str, done: int, total: int) -> None:
        """Report ``done`` of ``total`` units of ``step``."""
        if self.quiet or total <= 0:
            return
        percent = 100 * done // total
        shown = percent if self.live else percent // 25 * 25
        if (step, shown) == self._last:
            return
        self._last = (step, shown)
        line = f"[{time.monotonic() - self._started:6.1f} s] {step}: {shown:3d}%"
        if self.unit:
            line += f" ({done}/{total} {self.unit})"
        if not self.live:
            print(line, file=self.stream, flush=True)
            return
        print("\r" + line, end="", file=self.stream, flush=True)
        if done >= total:
            print(file=self.stream)
            self._last = ("", -1)

    def _finish_line(self) -> None:
        if self.live and self._last[1] >= 0:
            print(file=self.stream)
            self._last = ("", -1)
