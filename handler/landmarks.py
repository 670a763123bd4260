"""dlib's shape_predictor (an ensemble of regression trees, Kazemi and Sullivan 2014) in numpy.

The arrays come from dlib's .dat by models/convert_shape_predictor.py. `predict` does what dlib
20.0.1's `shape_predictor::operator()` does (dlib/image_processing/shape_predictor.h), with its
float32 arithmetic in the same order, so the points are dlib's own (tests/unit/test_landmarks_parity.py);
dlib itself is not a runtime dependency: its import and its load of the 9 MB .dat cost 50-120 ms of
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
# dlib's default tree depth (shape_predictor_trainer), the 5- and 68-point models': a leaf table of 2^15 entries.
MAX_DEPTH = 4


class ShapeModel:
    """One shape_predictor's arrays (the converter's .npz), evaluated on BGR or RGB uint8 images."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            self.initial = z["initial_shape"]                        # (parts, 2), the mean shape in the unit square
            idx1, idx2 = z["split_idx1"], z["split_idx2"]           # (cascades, trees, nodes)
            thresh, leaves = z["split_thresh"], z["leaf_values"]    # the latter (cascades, trees, leaves, parts, 2)
            self.anchors = z["anchor_idx"].astype(np.intp)           # (cascades, pixels)
            deltas = z["deltas"]                                     # (cascades, pixels, 2)
        cascades, trees, nodes = idx1.shape
        self.depth = int(np.log2(nodes + 1))
        if leaves.shape[:3] != (cascades, trees, nodes + 1) or 2 ** self.depth != nodes + 1:
            raise ValueError(f"{path}: not complete trees of one depth")
        if self.depth > MAX_DEPTH:  # the leaf table has 2 ** (2 ** depth - 1) entries
            raise ValueError(f"{path}: trees of depth {self.depth}, more than the {MAX_DEPTH} the leaf table allows")
        # Per cascade, flat over trees: node k of tree t at t * nodes + k, leaf j at t * (nodes + 1) + j.
        self._pairs = np.stack([idx1, idx2], axis=3).reshape(cascades, -1, 2).astype(np.intp)
        self._thresh = thresh.reshape(cascades, -1)
        self._leaves = leaves.reshape(cascades, trees * (nodes + 1), -1)
        self._trees, self._nodes = trees, nodes
        self._leaf_rows = np.arange(trees) * (nodes + 1)
        self._bit = (1 << np.arange(nodes)).astype(np.int64)
        self._leaf_of = _leaf_table(self.depth)
        self._dx, self._dy = np.ascontiguousarray(deltas[..., 0]), np.ascontiguousarray(deltas[..., 1])
        self._pixels = deltas.shape[1]
        # The least-squares similarity from the mean shape to a shape s, [[a, -b], [b, a]], is linear in s:
        # a = sum(m . s) / sum(|m|^2), b = sum(m_x s_y - m_y s_x) / sum(|m|^2), m the centred mean shape
        # (s's own mean drops out as m sums to 0). dlib fits it with Umeyama's SVD in double: the same
        # optimum to within double rounding, which the cast to float32 removes.
        mean = self.initial.astype(np.float64) - self.initial.astype(np.float64).mean(axis=0)
        fit = np.stack([mean, np.stack([-mean[:, 1], mean[:, 0]], axis=1)], axis=2) / (mean ** 2).sum()
        self._fit = fit.reshape(-1, 2)                               # (parts * 2, 2): s.ravel() @ fit = (a, b)

    def predict(self, image: np.ndarray, rects: list[tuple[int, int, int, int]]) -> np.ndarray:
        """(N, parts, 2) int points for the objects in `rects` (left, top, right, bottom, inclusive) of an HxWx3
        uint8 image: all of them at once, each exactly as dlib would find it alone."""
        box = np.array(rects, np.float64).reshape(-1, 4)
        faces = len(box)
        origin = box[:, :2, None]                                   # (N, 2, 1): left, top
        size = box[:, 2:, None] - origin                            # width, height (dlib: right - left)
        rows, cols = image.shape[:2]
        limit = np.array([[cols], [rows]], np.uintp)
        pixels = np.ascontiguousarray(image).reshape(-1, 3)         # a copy only for a strided view
        offsets = (np.arange(faces) * self._pixels)[:, None, None]  # each face's values in one flat array
        shapes = np.repeat(self.initial[None], faces, axis=0)
        for c in range(len(self._pairs)):
            # The similarity from the mean shape to each current shape: [[a, -b], [b, a]], float32 as dlib casts it.
            a, b = (shapes.reshape(faces, -1).astype(np.float64) @ self._fit).astype(F32).T
            rot = np.stack([a, -b, b, a], axis=1).reshape(faces, 2, 2, 1)
            # dlib: tform * delta + location in float32 (the products, their sum, then the anchor part), then
            # the unit square -> rect map in double and rounding to the nearest pixel, floor(x + 0.5).
            anchor = np.take(shapes, self.anchors[c], axis=1).transpose(0, 2, 1)  # fancy indexing: ~5x slower
            uv = (rot[:, :, 0] * self._dx[c] + rot[:, :, 1] * self._dy[c]) + anchor
            xy = np.floor(size * uv.astype(np.float64) + origin + 0.5).astype(np.intp)
            ok = xy.astype(np.uintp) < limit                        # negatives wrap to huge
            inside = ok[:, 0] & ok[:, 1]
            # np.take: fancy indexing of 3-byte rows is ~8x slower.
            px = np.take(pixels, (xy[:, 1] * cols + xy[:, 0]) * inside, axis=0)
            flat = ((px[..., 0].astype(np.uint16) + px[..., 1] + px[..., 2]) // 3 * inside).astype(F32).ravel()
            # Every split of every tree (and face) at once: left when pixel idx1 - pixel idx2 > threshold
            # (float32, as dlib). A tree's leaf depends only on its splits' outcomes, so they are packed
            # into one number per tree and the leaf read from a table (handful of numpy calls, not a
            # walk of `depth` levels: numpy's per-call cost is most of a face's).
            pair = np.take(flat, self._pairs[c] + offsets)
            left = (pair[..., 0] - pair[..., 1] > self._thresh[c]).reshape(faces, self._trees, self._nodes)
            leaf = np.take(self._leaf_of, left @ self._bit)
            updates = np.take(self._leaves[c], leaf + self._leaf_rows, axis=0)
            # dlib adds the trees' updates one after another in float32; a reduction along the
            # first axis of a C-ordered array adds rows in that order too.
            steps = np.concatenate([shapes.reshape(1, faces, -1), updates.transpose(1, 0, 2)])
            shapes = np.add.reduce(steps, axis=0).reshape(faces, -1, 2)
        xy = np.floor(size * shapes.transpose(0, 2, 1).astype(np.float64) + origin + 0.5)
        return xy.transpose(0, 2, 1).astype(np.intp)


def _leaf_table(depth: int) -> np.ndarray:
    """The leaf (0 .. 2**depth - 1) a complete tree of `depth` levels reaches, for every packing of its
    splits' outcomes (bit i: split i, breadth-first, went left; from node i left is 2i + 1, right 2i + 2)."""
    nodes = 2 ** depth - 1
    code = np.arange(2 ** nodes)
    at = np.zeros_like(code)
    for _ in range(depth):
        at = 2 * at + 2 - ((code >> at) & 1)
    return (at - nodes).astype(np.intp)
