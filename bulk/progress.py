"""A folder run's progress on stderr: tqdm's bar on a terminal, a plain line every so often elsewhere.

tqdm costs ~30 ms to import (after cv2 and numpy; docs/decisions.md), so it is imported only when
stderr is a terminal: logs and pipes get plain lines, which tqdm's carriage returns would garble. It comes
with requirements-dev.txt (`make install`), not requirements.txt, which Cloud Run's deploy installs.
"""

from __future__ import annotations

import sys
import time

PLAIN_EVERY_S = 15.0


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """done/total, photos per second, ETA and faces found so far."""

    def __init__(self, total: int, stream=sys.stderr) -> None:
        self.total, self.done, self.faces = total, 0, 0
        self._stream, self._started = stream, time.monotonic()
        self._next_plain = self._started + PLAIN_EVERY_S
        self._bar = None
        if total and stream.isatty():
            try:
                from tqdm import tqdm
            except ImportError:  # installed by `make install` (requirements-dev.txt); plain lines without it
                return
            self._bar = tqdm(total=total, unit="photo", file=stream, dynamic_ncols=True, smoothing=0.05)
            self._bar.set_postfix(faces=0, refresh=False)

    def update(self, faces: int) -> None:
        """One more photo done, with its faces."""
        self.done += 1
        self.faces += faces
        if self._bar is not None:
            self._bar.set_postfix(faces=f"{self.faces:,}", refresh=False)
            self._bar.update(1)
        elif time.monotonic() >= self._next_plain:
            self._next_plain += PLAIN_EVERY_S
            self._stream.write(self.line() + "\n")
            self._stream.flush()

    def line(self) -> str:
        """The plain progress line."""
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = _clock((self.total - self.done) / rate) if rate else "?"
        return (f"{self.done:,}/{self.total:,} photos, {rate:.1f} photos/s, ETA {eta}, "
                f"{self.faces:,} faces so far")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
