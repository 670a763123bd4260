"""Build the faceread AWS Lambda deployment zip (stdlib only): the steps in order, and the size report.

See the package docstring (infra/package/__init__.py) for the steps and the command.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from . import ROOT
from .prune import PRUNE_STEPS
from .sizes import Sizer, tree_bytes
from .smoke import find_python, verify
from .stage import stage_app
from .strip_safety import strip_shared_objects
from .zipping import write_zip

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: function code + all layers, unzipped
LAMBDA_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # zipped, for a direct API upload
ZIP_NAME = "faceread-lambda.zip"
# <out>/app/: handler/ + models/ alone, staged by --app-only for infra/Dockerfile and infra/gcp/.
APP_DIR = "app"
# Lambda python3.12 = Amazon Linux 2023 (glibc 2.34): manylinux wheels up to
# _2_34 run there. pip matches --platform tags exactly, so name each one, in
# order of preference (manylinux2014 = manylinux_2_17).
DEFAULT_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python-version", default="3.12", help="Lambda runtime Python (default 3.12)")
    ap.add_argument(
        "--platform",
        action="append",
        help=f"wheel platform tag, repeatable, first preferred (default: {' '.join(DEFAULT_PLATFORMS)})",
    )
    ap.add_argument("--out", default="build/", help="output directory (default build/)")
    ap.add_argument("--requirements", default=str(ROOT / "requirements-lambda.txt"))
    ap.add_argument("--handler-dir", default=str(ROOT / "handler"))
    ap.add_argument("--models-dir", default=str(ROOT / "models"))
    ap.add_argument("--app-only", action="store_true",
                    help=f"only stage handler/ + models/ into <out>/{APP_DIR}/ (the container image's and "
                         "Cloud Run's tree; no pip, no zip)")
    ap.add_argument("--no-strip", action="store_true", help="don't strip shared libraries")
    ap.add_argument("--no-verify", action="store_true", help="skip the unzip + import + forward smoke test")
    ap.add_argument("--verify-python", help="interpreter for the smoke test (default: find python<version>)")
    ap.add_argument("--report", help="write the size table as JSON here (default <out>/package-sizes.json)")
    args = ap.parse_args(argv)

    platforms = args.platform or list(DEFAULT_PLATFORMS)
    out = Path(args.out)
    if not out.is_absolute():
        out = Path.cwd() / out
    if args.app_only:
        app = out / APP_DIR
        if app.exists():
            shutil.rmtree(app)
        n_code, n_models = stage_app(Path(args.handler_dir), Path(args.models_dir), app)
        print(f"{app}: {n_code} handler files, {n_models} model files (the zip's handler/ and models/)")
        return 0
    stage = out / "lambda"
    zip_path = out / ZIP_NAME
    t_start = time.monotonic()

    # 1. dependencies ------------------------------------------------------
    if stage.exists():
        shutil.rmtree(stage)
    out.mkdir(parents=True, exist_ok=True)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",
        "--implementation",
        "cp",
        "--python-version",
        args.python_version,
        "--only-binary=:all:",
        "--target",
        str(stage),
        "-r",
        args.requirements,
    ]
    for plat in reversed(platforms):
        pip[4:4] = ["--platform", plat]
    print("$ " + " ".join(pip), flush=True)
    if subprocess.run(pip).returncode != 0:
        print(
            f"error: pip could not install {args.requirements} for {', '.join(platforms)}. If a pinned "
            "package has no wheel for that platform: Lambda's python3.12 runtime (Amazon Linux 2023, "
            "glibc 2.34) also runs manylinux_2_28 wheels: pass both, e.g. --platform manylinux2014_x86_64 "
            "--platform manylinux_2_28_x86_64 (the default).",
            file=sys.stderr,
        )
        return 1

    sizer = Sizer()
    rows: list[dict] = []

    def record(label: str, detail: str = "") -> None:
        files, unz, zipped = sizer.measure(stage)
        prev = rows[-1] if rows else None
        rows.append(
            {
                "step": label,
                "detail": detail,
                "files": files,
                "unzipped": unz,
                "zipped": zipped,
                "d_unzipped": unz - prev["unzipped"] if prev else None,
                "d_zipped": zipped - prev["zipped"] if prev else None,
            }
        )

    record("pip install -r " + Path(args.requirements).name)
    dist_info = tree_bytes(stage.glob("*.dist-info"))

    # 2. pruning -------------------------------------------------------------
    for label, fn in PRUNE_STEPS:
        n = fn(stage)
        record(label, f"{n} paths")
    if not args.no_strip:
        n, kept = strip_shared_objects(stage, shutil.which("strip"))
        record("strip --strip-unneeded (ELF with symbols)", f"{n} stripped, {kept} left as-is")

    # 3. our code + models ---------------------------------------------------
    n_code, n_models = stage_app(Path(args.handler_dir), Path(args.models_dir), stage)
    record("+ handler/ (whole, no bytecode caches) + models/ (MODEL_INCLUDE)",
           f"{n_code} + {n_models} files")
    # /var/task is read-only on Lambda: without shipped bytecode every cold start
    # compiles numpy's and our sources again. unchecked-hash pycs ignore the zip's
    # fixed timestamps.
    target_python = find_python(args.python_version, args.verify_python)
    if target_python:
        subprocess.run([target_python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode",
                        "unchecked-hash", str(stage)], check=True)
        record(f"+ bytecode (python{args.python_version} compileall)", "unchecked-hash .pyc")
    else:
        print(f"warning: no python{args.python_version} here: shipping without bytecode (slower cold starts)",
              file=sys.stderr)

    # 4. zip -----------------------------------------------------------------
    write_zip(stage, zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        unzipped = sum(i.file_size for i in zf.infolist())
        n_entries = len(zf.infolist())
    zipped = zip_path.stat().st_size

    # report -----------------------------------------------------------------
    w = max(len(r["step"]) for r in rows)
    fmt = f"{{:<{w}}} {{:>6}} {{:>13}} {{:>12}} {{:>13}} {{:>12}}"
    print()
    print(fmt.format("step", "files", "unzipped", "Δ unzipped", "zipped", "Δ zipped"))
    print(fmt.format("-" * w, "-" * 6, "-" * 13, "-" * 12, "-" * 13, "-" * 12))
    for r in rows:
        d_u = "" if r["d_unzipped"] is None else f"{r['d_unzipped']:+,}"
        d_z = "" if r["d_zipped"] is None else f"{r['d_zipped']:+,}"
        print(fmt.format(r["step"], r["files"], f"{r['unzipped']:,}", d_u, f"{r['zipped']:,}", d_z))
    print(f"(kept: *.dist-info = {dist_info:,} bytes unzipped -- licences/METADATA)")
    print()
    print(f"{zip_path}: {n_entries} entries")
    print(
        f"  unzipped {unzipped:>13,} bytes  ({unzipped / 2**20:.1f} MiB; limit {LAMBDA_UNZIPPED_LIMIT:,}, "
        f"headroom {LAMBDA_UNZIPPED_LIMIT - unzipped:,})"
    )
    print(f"  zipped   {zipped:>13,} bytes  ({zipped / 2**20:.1f} MiB)")
    if zipped > LAMBDA_DIRECT_UPLOAD_LIMIT:
        print(
            "  note: zipped size is over the 50 MB direct-upload limit: deploy it via S3 "
            "(aws lambda update-function-code --s3-bucket ... --s3-key ...)"
        )
    report = Path(args.report) if args.report else out / "package-sizes.json"
    report.write_text(
        json.dumps(
            {
                "zip": str(zip_path),
                "unzipped": unzipped,
                "zipped": zipped,
                "entries": n_entries,
                "limit_unzipped": LAMBDA_UNZIPPED_LIMIT,
                "dist_info_bytes": dist_info,
                "steps": rows,
            },
            indent=1,
        )
        + "\n"
    )

    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        print(
            f"error: unzipped size {unzipped:,} bytes exceeds Lambda's limit of "
            f"{LAMBDA_UNZIPPED_LIMIT:,} bytes by {unzipped - LAMBDA_UNZIPPED_LIMIT:,}; "
            "use the container image (infra/Dockerfile) or prune more",
            file=sys.stderr,
        )
        return 2

    # 5. verify --------------------------------------------------------------
    if not args.no_verify:
        py = find_python(args.python_version, args.verify_python)
        if py is None:
            print(
                f"warning: no python{args.python_version} found: smoke test skipped (pass --verify-python PATH)",
                file=sys.stderr,
            )
        else:
            print()
            verify(zip_path, py)
    print(f"done in {time.monotonic() - t_start:.0f}s")
    return 0

