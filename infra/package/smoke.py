"""The smoke test: the zip unpacked into an empty folder and run by a bare interpreter of the target version."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Pure-Python distributions the Lambda runtime provides (python3.12 images
# ship boto3 + botocore and their dependencies).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


SMOKE = r"""
import os, sys, time
root = sys.argv[1]
runtime = sys.argv[2] if len(sys.argv) > 2 else None  # stand-in for /var/runtime (boto3)
assert sys.flags.no_site and sys.flags.ignore_environment, "run with -S -E"
sys.path[:] = [root] + [p for p in sys.path if p]  # drop '' (cwd) that -c adds
for p in sys.path:
    assert p == root or p.startswith(sys.base_prefix), "foreign sys.path entry: " + p
t0 = time.perf_counter()
import numpy as np
import cv2
print("import cv2+numpy: %.2fs  cv2 %s (%s)  numpy %s (%s)" % (
    time.perf_counter() - t0, cv2.__version__, os.path.dirname(cv2.__file__),
    np.__version__, os.path.dirname(np.__file__)))
# exercise numpy's other (stripped) extension modules too
a = np.random.default_rng(1).standard_normal((64, 64))
assert np.allclose(a @ np.linalg.inv(a), np.eye(64), atol=1e-6)
assert np.allclose(np.fft.ifft(np.fft.fft(a[0])).real, a[0])
print("numpy linalg/fft/random: ok;", "BLAS:", (np.show_config(mode="dicts") or {}).get(
    "Build Dependencies", {}).get("blas", {}).get("name"))
for mod in (cv2, np):
    assert os.path.realpath(mod.__file__).startswith(os.path.realpath(root)), mod.__file__
print("sys.path =", sys.path)
# every shared object in the bundle (stripped or not) must still dlopen
import ctypes
n_so = 0
for d, _, fns in os.walk(root):
    for fn in sorted(fns):
        if ".so" in fn and not fn.endswith(".py"):
            ctypes.CDLL(os.path.join(d, fn), mode=ctypes.RTLD_LOCAL)
            n_so += 1
print("dlopen: %d shared objects ok" % n_so)

# Every net the manifest names, through the runtime's own reader (handler/manifest.py) and adapters,
# from the zip: loaded and warmed; each net with a fixed input size then runs once more in a fresh
# cv2.dnn.Net on a random image prepared as its input contract says (size, scale, mean, colour order),
# its output finite and, for a net with labels or values, one number per label or value.
import types
from pathlib import Path
models = os.path.join(root, "models")
bare = types.ModuleType("handler")  # without handler/__init__.py, which starts the service (imported below)
bare.__path__ = [os.path.join(root, "handler")]
sys.modules["handler"] = bare
from handler.manifest import read_manifest
from handler.models import load_net
rng = np.random.default_rng(0)
count = 0
for key, spec in read_manifest(Path(models)).items():
    t0 = time.perf_counter()
    adapter = load_net(spec)
    adapter.warm()
    line = "net %-10s %-12s %-45s loaded and warmed in %4.0f ms" % (
        key, spec.backend, spec.id, (time.perf_counter() - t0) * 1000)
    if "width" in spec.input and spec.backend == "onnx":
        w, h = spec.input_size
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        net = cv2.dnn.readNetFromONNX(str(spec.files["weights"]))
        net.setInput(cv2.dnn.blobFromImage(image, spec.input["scale"], (w, h), tuple(spec.input["mean"]),
                                           swapRB=spec.input["color_order"] == "RGB", crop=False))
        out = net.forward()
        assert np.all(np.isfinite(out)), key
        named = spec.extra.get("labels") or spec.extra.get("values")
        assert not named or out.size == len(named), (key, out.shape, len(named))
        line += "; input %dx%d -> output %s" % (w, h, tuple(out.shape))
    print(line)
    count += 1
assert count, "no nets in " + models
for name in [m for m in sys.modules if m == "handler" or m.startswith("handler.")]:
    del sys.modules[name]

if runtime:
    sys.path.append(runtime)  # after the bundle: the bundle always wins
import importlib
for mod in ("handler", "handler.aws"):
    if mod == "handler.aws" and not os.path.exists(os.path.join(root, "handler", "aws.py")):
        continue
    try:
        m = importlib.import_module(mod)
    except ImportError as exc:
        if runtime is None and getattr(exc, "name", "") and exc.name.split(".")[0] in (
                "boto3", "botocore"):
            print("import %s: skipped (needs %s, which the Lambda runtime provides; "
                  "not installed in the build env)" % (mod, exc.name))
            continue
        raise
    print("import %s: ok (%s)" % (mod, m.__file__))
print("SMOKE OK")
"""


def find_python(version: str, explicit: str | None) -> str | None:
    cands = [explicit] if explicit else []
    if not explicit:
        cands.append(shutil.which(f"python{version}"))
        cands += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
        cands += [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    for c in cands:
        if not c:
            continue
        try:
            out = subprocess.run(
                [c, "-S", "-E", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return c
    return None


def runtime_provided_dir(dest: Path) -> Path | None:
    """Make *dest* hold symlinks to the build environment's boto3 & co.

    Stands in for the Lambda runtime's own copy (/var/runtime) in tests that
    import the handler from the unpacked zip with nothing else on sys.path.
    Returns None when boto3 isn't installed in the build environment.
    """
    if importlib.util.find_spec("boto3") is None:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PROVIDED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        src = Path(spec.origin)
        src = src.parent if src.name == "__init__.py" else src
        link = dest / src.name
        if not link.exists():
            link.symlink_to(src, target_is_directory=src.is_dir())
    return dest


def verify(zip_path: Path, python: str) -> None:
    with tempfile.TemporaryDirectory(prefix="faceread-unzip-") as tmp:
        root = Path(tmp) / "task"
        root.mkdir()
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(root)
            for info in zf.infolist():  # extractall drops modes; restore them
                os.chmod(root / info.filename, (info.external_attr >> 16) & 0o777)
        cmd = [python, "-S", "-E", "-s", "-c", SMOKE, str(root)]
        runtime = runtime_provided_dir(Path(tmp) / "runtime")
        if runtime is not None:
            cmd.append(str(runtime))
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8"}
        print(f"$ {python} -S -E -s -c <smoke test> {root}")
        proc = subprocess.run(cmd, cwd=tmp, env=env, text=True, capture_output=True)
        sys.stdout.write(proc.stdout)
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            raise SystemExit(f"error: smoke test of {zip_path} failed (exit {proc.returncode})")

