"""dlib's shape_predictor (an ensemble of regression trees, Kazemi and Sullivan 2014) in numpy.

The arrays come from dlib's .dat by models/convert_shape_predictor.py. `predict` does what dlib
20.0.1's `shape_predictor::operator()` does (dlib/image_processing/shape_predictor.h), with its
float32 arithmetic in the same order, so the points are dlib's own (tests/unit/test_landmarks_parity.py);
dlib itself is not a runtime dependency: its import and its load of the 9 MB .dat cost ~50 ms of
start-up (docs/decisions.md, "Landmarks without dlib").

Per cascade: the similarity transform from the mean shape to the current one (least squares,
rotation and scale only, cast to float32 as dlib does) places the cascade's feature pixels, each
an offset from its anchor part; a pixel's value is dlib's grey intensity (r + g + b) // 3 (any
channel order), 0 outside the image; each tree compares two pixels per level (left when
a - b > threshold) and the leaf's shape update is added. Points are mapped from the unit square
to the rectangle and rounded as dlib does (floor(x + 0.5)).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

F32 = np.float32


def _leaf_table(depth: int) -> np.ndarray:
    """For each pattern of split outcomes (bit k: node k goes left), the leaf a complete tree of `depth` ends in."""
    nodes = 2 ** depth - 1
    patterns = np.arange(2 ** nodes)
    node = np.zeros_like(patterns)
    for _ in range(depth):
        node = 2 * node + 2 - ((patterns >> node) & 1)
    return (node - nodes).astype(np.intp)


class ShapeModel:
    """One shape_predictor's arrays (the converter's .npz), evaluated on BGR or RGB uint8 images."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            self.initial = z["initial_shape"]                      # (parts, 2)
            self.idx1 = z["split_idx1"].astype(np.intp)            # (cascades, trees, nodes)
            self.idx2 = z["split_idx2"].astype(np.intp)
            self.thresh = z["split_thresh"]
            self.leaves = z["leaf_values"]                         # (cascades, trees, leaves, parts, 2)
            self.anchors = z["anchor_idx"].astype(np.intp)         # (cascades, pixels)
            self.deltas = z["deltas"]                              # (cascades, pixels, 2)
        cascades, trees, nodes = self.idx1.shape
        self.depth = int(np.log2(nodes + 1))
        if self.leaves.shape[:3] != (cascades, trees, nodes + 1) or 2 ** self.depth != nodes + 1 or nodes > 16:
            raise ValueError(f"{path}: not complete trees of one depth, up to 16 splits")
        self._leaf_rows = np.arange(trees) * (nodes + 1)
        self._leaves = self.leaves.reshape(cascades, trees * (nodes + 1), -1)
        self._leaf_of = _leaf_table(self.depth)
        self._centred = self.initial.astype(np.float64) - self.initial.astype(np.float64).mean(axis=0)
        self._spread = float((self._centred ** 2).sum())

    @property
    def parts(self) -> int:
        return len(self.initial)

    def _rotation_scale(self, shape: np.ndarray) -> np.ndarray:
        """The 2x2 part (float32) of the least-squares similarity from the mean shape to `shape`.

        dlib fits it with Umeyama's SVD in double; for 2-D the optimum is closed-form, equal to
        double rounding, and the float32 cast makes them the same numbers."""
        to = shape.astype(np.float64)
        to = to - to.mean(axis=0)
        fr = self._centred
        a = float((fr[:, 0] * to[:, 0] + fr[:, 1] * to[:, 1]).sum()) / self._spread
        b = float((fr[:, 0] * to[:, 1] - fr[:, 1] * to[:, 0]).sum()) / self._spread
        return np.array([[a, -b], [b, a]], F32)

    def predict(self, image: np.ndarray, rect: tuple[int, int, int, int]) -> np.ndarray:
        """(parts, 2) int points for the object in `rect` (left, top, right, bottom, inclusive) of an HxWx3 uint8 image."""
        left, top, right, bottom = rect
        width, height = float(right - left), float(bottom - top)
        rows, cols = image.shape[:2]
        shape = self.initial.copy()
        for c in range(len(self.idx1)):
            m = self._rotation_scale(shape)
            d = self.deltas[c]
            anchor = shape[self.anchors[c]]
            # dlib: tform * delta + location, float32, products then sums in this order.
            u = (m[0, 0] * d[:, 0] + m[0, 1] * d[:, 1]) + anchor[:, 0]
            v = (m[1, 0] * d[:, 0] + m[1, 1] * d[:, 1]) + anchor[:, 1]
            x = np.floor(width * u.astype(np.float64) + left + 0.5).astype(np.intp)
            y = np.floor(height * v.astype(np.float64) + top + 0.5).astype(np.intp)
            inside = (x >= 0) & (x < cols) & (y >= 0) & (y < rows)
            px = image[np.where(inside, y, 0), np.where(inside, x, 0)].astype(np.uint32).sum(axis=1) // 3
            values = np.where(inside, px, 0).astype(F32)
            # Every split of every tree at once, as bits (bit k: node k goes left), then the leaf each
            # tree's bit pattern leads to: the same leaves as walking the trees node by node.
            goes_left = values[self.idx1[c]] - values[self.idx2[c]] > self.thresh[c]
            pattern = np.packbits(goes_left, axis=1, bitorder="little").view("<u2")[:, 0]
            updates = self._leaves[c][self._leaf_rows + self._leaf_of[pattern]].reshape(-1, *shape.shape)
            # dlib adds the trees' updates one after another in float32; a reduction along the
            # first axis of a C-ordered array adds rows in order too.
            shape = np.add.reduce(np.concatenate([shape[None], updates]), axis=0, dtype=F32)
        x = np.floor(width * shape[:, 0].astype(np.float64) + left + 0.5)
        y = np.floor(height * shape[:, 1].astype(np.float64) + top + 0.5)
        return np.stack([x, y], axis=1).astype(np.intp)
