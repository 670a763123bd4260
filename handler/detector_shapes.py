"""One cv2.FaceDetectorYN per input shape, so a photo never makes OpenCV re-allocate the detector's net.

cv2.dnn sizes a net's buffers for the last input shape it saw; a forward at any
other shape frees them and allocates and faults in new ones. One request on a big
photo runs the detector at three or more shapes (the 640 px pass, the finer pass's
bands, the crops it re-checks) and the next request starts over: measured here on
2 threads, a 640x480 pass after a 2048x1536 one took 19 ms against 6.5, and the
2048x1536 one after it 160-197 ms against 115. A detector per shape keeps each
shape's buffers, up to a budget of input pixels (the buffers take about 65 MB per
megapixel), dropping the least recently used shape beyond it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

# FaceDetectorYN pads its input to a multiple of this, so shapes that pad alike share a detector.
PAD = 32


def padded(width: int, height: int) -> tuple[int, int]:
    """The (width, height) the detector's net sees for an input of this size."""
    return -(-width // PAD) * PAD, -(-height // PAD) * PAD


class DetectorsByShape:
    """Detectors keyed by padded input shape, their shapes' pixels at most `budget` (the latest always kept).

    Not thread-safe: each clone of the detector pool holds one.
    """

    def __init__(self, create: Callable[[], Any], budget: int) -> None:
        self._create = create
        self.budget = budget
        self._by_shape: OrderedDict[tuple[int, int], Any] = OrderedDict()

    def get(self, width: int, height: int) -> Any:
        """A detector set to this input size, made on the shape's first use."""
        shape = padded(width, height)
        detector = self._by_shape.pop(shape, None)
        if detector is None:
            detector = self._create()
            while self._by_shape and self.pixels() + shape[0] * shape[1] > self.budget:
                self._by_shape.popitem(last=False)
        self._by_shape[shape] = detector
        detector.setInputSize((width, height))
        return detector

    def pixels(self) -> int:
        """The input pixels of every shape kept."""
        return sum(w * h for w, h in self._by_shape)

    def shapes(self) -> list[tuple[int, int]]:
        """The shapes kept, least recently used first."""
        return list(self._by_shape)
