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


class ShapeModel:
    """One shape_predictor's arrays (the converter's .npz), evaluated on BGR or RGB uint8 images."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            self.initial = z["initial_shape"]                      # (parts, 2)
            idx1 = z["split_idx1"]                                 # (cascades, trees, nodes)
            self.idx1 = idx1.reshape(len(idx1), -1).astype(np.intp)  # (cascades, trees * nodes) from here on
            self.idx2 = z["split_idx2"].reshape(len(idx1), -1).astype(np.intp)
            self.thresh = z["split_thresh"].reshape(len(idx1), -1)
            self.leaves = z["leaf_values"]                         # (cascades, trees, leaves, parts, 2)
            self.anchors = z["anchor_idx"].astype(np.intp)         # (cascades, pixels)
            self.deltas = z["deltas"]                              # (cascades, pixels, 2)
        cascades, trees, nodes = idx1.shape
        self.depth = int(np.log2(nodes + 1))
        if self.leaves.shape[:3] != (cascades, trees, nodes + 1) or 2 ** self.depth != nodes + 1:
            raise ValueError(f"{path}: not complete trees of one depth")
        self._trees, self._nodes = trees, nodes
        self._tree_base = np.arange(trees) * nodes
        self._leaf_rows = np.arange(trees) * (nodes + 1)
        self._leaves = self.leaves.reshape(cascades, trees * (nodes + 1), -1)
        self._dx, self._dy = np.ascontiguousarray(self.deltas[..., 0]), np.ascontiguousarray(self.deltas[..., 1])
        self._centred = self.initial.astype(np.float64) - self.initial.astype(np.float64).mean(axis=0)
        self._spread = float((self._centred ** 2).sum())

    @property
    def parts(self) -> int:
        return len(self.initial)

    def _rotation_scale(self, shapes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per shape, a and b (float32, (N, 1) each) of the least-squares similarity [[a, -b], [b, a]] from the
        mean shape to it.

        dlib fits it with Umeyama's SVD in double; in 2-D the optimum has a closed form, equal to
        within double rounding, and the cast to float32 makes them the same numbers."""
        to = shapes.astype(np.float64)
        to -= to.mean(axis=1, keepdims=True)
        fr = self._centred
        a = (fr * to).sum(axis=(1, 2)) / self._spread
        b = (fr[:, 0] * to[:, :, 1] - fr[:, 1] * to[:, :, 0]).sum(axis=1) / self._spread
        return a.astype(F32)[:, None], b.astype(F32)[:, None]

    def predict(self, image: np.ndarray, rects: list[tuple[int, int, int, int]]) -> np.ndarray:
        """(N, parts, 2) int points for the objects in `rects` (left, top, right, bottom, inclusive) of an HxWx3
        uint8 image: all of them at once, each exactly as dlib would find it alone."""
        box = np.array(rects, np.float64).reshape(-1, 4)
        left, top = box[:, :1], box[:, 1:2]
        width, height = box[:, 2:3] - left, box[:, 3:4] - top
        rows, cols = image.shape[:2]
        pixels = np.ascontiguousarray(image).reshape(-1, 3)  # a copy only for a strided view
        faces = len(box)
        shapes = np.repeat(self.initial[None], faces, axis=0)
        for c in range(len(self.idx1)):
            a, b = self._rotation_scale(shapes)
            dx, dy, anchor = self._dx[c], self._dy[c], self.anchors[c]
            # dlib: tform * delta + location in float32 (products, their sum, then the anchor part), then
            # the unit square -> rect map in double and rounding to the nearest pixel, floor(x + 0.5).
            u = (a * dx + -b * dy) + shapes[:, anchor, 0]
            v = (b * dx + a * dy) + shapes[:, anchor, 1]
            x = np.floor(width * u.astype(np.float64) + left + 0.5).astype(np.intp)
            y = np.floor(height * v.astype(np.float64) + top + 0.5).astype(np.intp)
            inside = (x.astype(np.uintp) < cols) & (y.astype(np.uintp) < rows)  # negatives wrap to huge
            px = np.take(pixels, (y * cols + x) * inside, axis=0)  # fancy indexing of 3-byte rows is ~8x slower
            values = ((px[..., 0].astype(np.uint16) + px[..., 1] + px[..., 2]) // 3 * inside).astype(F32)
            offsets = np.arange(faces)[:, None] * values.shape[1]
            # Each tree walked from its root, all trees (and faces) a level at a time: left when
            # pixel idx1 - pixel idx2 > threshold (float32, as dlib), to node 2i + 1, else 2i + 2.
            flat, node = values.ravel(), np.zeros((faces, self._trees), np.intp)
            for _ in range(self.depth):
                at = self._tree_base + node
                goes_left = flat[offsets + self.idx1[c, at]] - flat[offsets + self.idx2[c, at]] > self.thresh[c, at]
                node = 2 * node + 2 - goes_left
            updates = np.take(self._leaves[c], self._leaf_rows + node - self._nodes, axis=0)
            # dlib adds the trees' updates one after another in float32; a reduction along the
            # first axis of a C-ordered array adds rows in that order too.
            steps = np.concatenate([shapes.reshape(1, faces, -1), updates.transpose(1, 0, 2)])
            shapes = np.add.reduce(steps, axis=0).reshape(faces, -1, 2)
        x = np.floor(width * shapes[..., 0].astype(np.float64) + left + 0.5)
        y = np.floor(height * shapes[..., 1].astype(np.float64) + top + 0.5)
        return np.stack([x, y], axis=2).astype(np.intp)
