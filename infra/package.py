#!/usr/bin/env python3
"""Build the faceread AWS Lambda deployment zip (stdlib only).

    python infra/package.py --python-version 3.12 \
        --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --out build/

Steps:
  1. pip-install requirements-lambda.txt for the *Lambda* interpreter
     (cp312, manylinux2014 / manylinux_2_28 x86_64, binary wheels only)
     into <out>/lambda;
  2. prune what Lambda never runs (bytecode for the build interpreter,
     console scripts, test suites, typing stubs, C headers / static libs,
     f2py, OpenCV's haar cascades) and strip symbol tables from the shared
     libraries that still carry them -- measuring every step;
  3. copy our code (handler/ whole, without bytecode caches) and the model files
     (models/, MODEL_INCLUDE only);
  4. zip deterministically (sorted entries, fixed timestamps, normalised
     permissions, DEFLATE level 9) into <out>/faceread-lambda.zip;
  5. fail if the unzipped size exceeds Lambda's 262,144,000-byte limit;
  6. unless --no-verify: unpack the zip into an empty directory and, in a
     fresh interpreter of the target version run with -S -E -s (sys.path =
     that folder + the stdlib), import cv2/numpy and run a DNN forward pass
     through every model in models/.

boto3/botocore are deliberately NOT bundled: the Lambda Python runtime
provides them (they would add ~90 MB unzipped). A test that imports the
handler from the unpacked zip must add boto3 from the build venv explicitly,
as "what the runtime provides" -- see runtime_provided_dir().

`--app-only` does step 3 alone, into <out>/app/ (`make app`): the tree infra/Dockerfile copies
and infra/gcp/deploy*.sh upload, so the image and the Cloud Run sources ship what the zip ships.

Exit codes: 0 ok, 1 build/verification failure, 2 over the size limit.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
import types
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LAMBDA_UNZIPPED_LIMIT = 262_144_000  # bytes: function code + all layers, unzipped
LAMBDA_DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024  # zipped, for a direct API upload
ZIP_NAME = "faceread-lambda.zip"
# <out>/app/: handler/ + models/ alone, staged by --app-only for infra/Dockerfile and infra/gcp/.
APP_DIR = "app"
# Lambda python3.12 = Amazon Linux 2023 (glibc 2.34): manylinux wheels up to
# _2_34 run there. pip matches --platform tags exactly, so name each one, in
# order of preference (manylinux2014 = manylinux_2_17).
DEFAULT_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
# 1980-01-01 00:00:00 is the earliest timestamp a zip entry can hold.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)

# What goes from models/ into the package (globs relative to models/).
# Everything else there (README, fetch.py, caches) stays out.
MODEL_INCLUDE = (
    "*.onnx",  # yunet.onnx: models/convert_yunet.py, from the build-only libfacedetection.so (not shipped)
    "*.dat",  # dlib shape predictor (5-point face landmarks)
    "manifest.json",
    "calibration.json",  # fitted by `make calibrate`, pinned by the manifest
    "notices/*",
    "LICENSE*",
)
WEIGHT_SUFFIXES = (".caffemodel", ".prototxt.txt", ".onnx", ".dat")
# handler/ ships whole: it holds only what the functions run (dev tools live in evaluation/ and tools/;
# tests/unit/test_reachable.py keeps it so). Only the build interpreter's bytecode caches stay out.
BYTECODE_DIRS = {"__pycache__"}
BYTECODE_FILES = ("*.pyc", "*.pyo")

# Pure-Python distributions the Lambda runtime provides (python3.12 images
# ship boto3 + botocore and their dependencies).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


# --------------------------------------------------------------------------- #
# measuring
# --------------------------------------------------------------------------- #
class Sizer:
    """Unzipped bytes and exact DEFLATE-9 sizes of a tree, cached per file."""

    def __init__(self) -> None:
        self._cache: dict[tuple, int] = {}

    @staticmethod
    def deflated_size(path: Path) -> int:
        # Same compressor zipfile uses for ZIP_DEFLATED at compresslevel=9.
        comp = zlib.compressobj(9, zlib.DEFLATED, -15)
        n = 0
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                n += len(comp.compress(chunk))
        return n + len(comp.flush())

    def measure(self, tree: Path) -> tuple[int, int, int]:
        """(files, unzipped bytes, zipped bytes) of the zip made from *tree*."""
        files = unzipped = zipped = 0
        for rel, path in iter_files(tree):
            st = path.stat()
            key = (rel, st.st_size, st.st_mtime_ns, st.st_ino)
            if key not in self._cache:
                self._cache[key] = self.deflated_size(path)
            name_len = len(rel.encode())
            files += 1
            unzipped += st.st_size
            # local header (30) + central directory entry (46), each with the name
            zipped += self._cache[key] + 76 + 2 * name_len
        return files, unzipped, zipped + 22  # + end-of-central-directory record


def iter_files(tree: Path):
    """(posix relative path, Path) of every regular file under *tree*, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames.sort()
        for fn in filenames:
            p = Path(dirpath) / fn
            if p.is_symlink() or not p.is_file():
                continue
            out.append((p.relative_to(tree).as_posix(), p))
    out.sort()
    return out


def tree_bytes(paths) -> int:
    total = 0
    for p in paths:
        if p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        elif p.exists():
            total += p.stat().st_size
    return total


# --------------------------------------------------------------------------- #
# pruning: each step removes/changes files under the staging dir
# --------------------------------------------------------------------------- #
def _rm(paths) -> int:
    n = 0
    for p in sorted(set(paths), key=lambda x: len(x.parts), reverse=True):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
            n += 1
        elif p.exists() or p.is_symlink():
            p.unlink()
            n += 1
    return n


def prune_bytecode(site: Path) -> int:
    # pip runs under the *build* interpreter (3.11 here), so any bytecode it
    # wrote is for the wrong version; Lambda's /var/task is read-only, so
    # stale caches are never rewritten either.
    return _rm(list(site.rglob("__pycache__")) + list(site.rglob("*.pyc")) + list(site.rglob("*.pyo")))


def prune_scripts(site: Path) -> int:
    # console scripts (f2py, numpy-config) with a build-venv shebang
    return _rm([site / "bin"])


def prune_tests(site: Path) -> int:
    # numpy/tests, numpy/_core/tests, numpy/*/tests, ... (never imported at runtime)
    return _rm([d for d in site.rglob("tests") if d.is_dir()])


def prune_stubs(site: Path) -> int:
    # type stubs and Cython declarations: only read by type checkers / cython
    return _rm([p for pat in ("*.pyi", "py.typed", "*.pxd") for p in site.rglob(pat)])


def prune_numpy_dev(site: Path) -> int:
    # C headers, static libs and pkg-config files (for building extensions
    # against numpy), f2py (Fortran wrapper generator, imported lazily only on
    # `numpy.f2py` access) and the PyInstaller hook.
    np = site / "numpy"
    return _rm(
        [
            np / "_core" / "include",
            np / "_core" / "lib",
            np / "random" / "lib",
            np / "random" / "_examples",
            np / "f2py",
            np / "_pyinstaller",
        ]
    )


def prune_cv2_data(site: Path) -> int:
    # Haar cascade XMLs (~9.7 MB). cv2/__init__ imports every sub-package,
    # so keep cv2/data/__init__.py (it only defines cv2.data.haarcascades).
    return _rm(list((site / "cv2" / "data").glob("*.xml")))


def _elf64_header(fh) -> bytes | None:
    """The 64-byte header of a 64-bit little-endian ELF file, or None for anything else."""
    hdr = fh.read(64)
    if len(hdr) < 64 or hdr[:4] != b"\x7fELF" or hdr[4] != 2 or hdr[5] != 1:
        return None
    return hdr


def elf_sections(path: Path) -> list[tuple[bytes, int, int, int, int, int]] | None:
    """Section headers of a 64-bit little-endian ELF file as
    (name, type, flags, addr, offset, size); None if not such a file."""
    try:
        with open(path, "rb") as fh:
            hdr = _elf64_header(fh)
            if hdr is None:
                return None
            (shoff,) = struct.unpack_from("<Q", hdr, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from("<HHH", hdr, 0x3A)
            if not shoff or not shnum or shstrndx >= shnum:
                return None
            fh.seek(shoff)
            table = fh.read(shentsize * shnum)
            raw = [struct.unpack_from("<IIQQQQ", table, i * shentsize) for i in range(shnum)]
            _, _, _, _, str_off, str_size = raw[shstrndx]
            fh.seek(str_off)
            names = fh.read(str_size)
    except (OSError, struct.error):
        return None
    return [(names[n : names.find(b"\0", n)], t, f, addr, off, size) for n, t, f, addr, off, size in raw]


def elf_has_symbols(path: Path) -> bool:
    """True for a 64-bit little-endian ELF that still has .symtab or .debug_*."""
    return any(t == 2 or name.startswith(b".debug") for name, t, *_ in elf_sections(path) or ())


def elf_load_segments(path: Path) -> list[tuple[int, int, int, int, int, int]] | None:
    """PT_LOAD program headers as (flags, offset, vaddr, filesz, memsz, align)."""
    try:
        with open(path, "rb") as fh:
            hdr = _elf64_header(fh)
            if hdr is None:
                return None
            (phoff,) = struct.unpack_from("<Q", hdr, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", hdr, 0x36)
            fh.seek(phoff)
            table = fh.read(phentsize * phnum)
    except OSError:
        return None
    segs = []
    for i in range(phnum):
        p_type, flags, offset, vaddr, _paddr, filesz, memsz, align = struct.unpack_from(
            "<IIQQQQQQ", table, i * phentsize
        )
        if p_type == 1:  # PT_LOAD
            segs.append((flags, offset, vaddr, filesz, memsz, align))
    return segs


def strip_is_safe(orig: Path, stripped: Path) -> bool:
    """Does *stripped* load exactly the same memory image as *orig*?

    auditwheel's patchelf appends PT_LOAD segments; binutils strip may
    rewrite those (dropping data, or leaving offsets no longer congruent to
    their addresses -> "ELF load command address/offset not page-aligned").
    Accept the stripped file only if every PT_LOAD keeps its flags, address,
    alignment and mapped pages and stays mappable, and every allocated
    section of the original has identical bytes at the same address.
    """
    before, after = elf_load_segments(orig), elf_load_segments(stripped)
    if before is None or after is None or len(before) != len(after):
        return False
    for (fl0, _o0, v0, _fs0, m0, a0), (fl1, o1, v1, _fs1, m1, a1) in zip(before, after):
        page = max(a1, 1)
        if (fl0, v0, a0) != (fl1, v1, a1) or m1 > m0 or o1 % page != v1 % page:
            return False
        if -(-(v0 + m0) // page) != -(-(v1 + m1) // page):
            return False  # a different set of pages would be mapped
    sections = elf_sections(orig)
    if sections is None:
        return False
    with open(orig, "rb") as f0, open(stripped, "rb") as f1:
        for _name, sh_type, flags, addr, offset, size in sections:
            if not flags & 0x2 or sh_type == 8 or not size:  # !SHF_ALLOC, SHT_NOBITS
                continue
            idx = next((i for i, (_, _, v, fs, _, _) in enumerate(before) if v <= addr and addr + size <= v + fs), None)
            if idx is None:
                return False
            _fl, o1, v1, fs1, _m, _a = after[idx]
            if addr + size > v1 + fs1:
                return False
            f0.seek(offset)
            f1.seek(o1 + addr - v1)
            if f0.read(size) != f1.read(size):
                return False
    return True


def strip_shared_objects(site: Path, strip_exe: str | None) -> tuple[int, int]:
    """Strip symbol tables from ELF files that still have them.

    The wheels' big libraries (cv2.abi3.so, OpenCV's OpenBLAS) already come
    stripped; numpy's extension modules and its OpenBLAS do not.
    --strip-unneeded keeps the dynamic symbol table, so imports still work.
    Files whose load segments strip would break (patchelf-ed ones) are put
    back as they were. Returns (stripped, kept-as-is).
    """
    if not strip_exe:
        print("  ! `strip` not found: skipping the strip step", file=sys.stderr)
        return 0, 0
    stripped = kept = 0
    for p in sorted(site.rglob("*.so*")):
        if not p.is_file() or p.is_symlink() or not elf_has_symbols(p):
            continue
        tmp = p.with_name(p.name + ".stripped")
        subprocess.run([strip_exe, "--strip-unneeded", "-o", str(tmp), str(p)], check=True)
        if strip_is_safe(p, tmp):
            os.chmod(tmp, p.stat().st_mode)
            os.replace(tmp, p)
            stripped += 1
        else:
            tmp.unlink()
            kept += 1
            print(f"  strip would change the loaded image of {p.relative_to(site)}: kept unstripped")
    return stripped, kept


PRUNE_STEPS = [
    ("- __pycache__ / *.pyc (build-interpreter bytecode)", prune_bytecode),
    ("- bin/ console scripts", prune_scripts),
    ("- tests/ directories", prune_tests),
    ("- typing stubs *.pyi, py.typed, Cython *.pxd", prune_stubs),
    ("- numpy headers, static libs, f2py, pyinstaller hook", prune_numpy_dev),
    ("- cv2/data haar cascades (*.xml)", prune_cv2_data),
]


# --------------------------------------------------------------------------- #
# copying our code
# --------------------------------------------------------------------------- #
def copy_handler(src: Path, dest_root: Path) -> int:
    if not (src / "__init__.py").is_file():
        raise SystemExit(f"error: {src} is not a Python package (no __init__.py)")
    n = 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in BYTECODE_DIRS)
        for fn in sorted(filenames):
            s = Path(dirpath) / fn
            if any(fnmatch.fnmatch(fn, pat) for pat in BYTECODE_FILES):
                continue
            d = dest_root / "handler" / s.relative_to(src)
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(s, d)
            n += 1
    return n


def stage_app(handler_dir: Path, models_dir: Path, dest_root: Path) -> tuple[int, int]:
    """Copy our code and models (the application tree) into *dest_root*: (handler files, model files).

    The one selection every way of shipping uses: the zip's stage, the container image's build
    context (infra/Dockerfile COPYs <out>/app/, made by `--app-only`) and the Cloud Run sources
    (infra/gcp/deploy*.sh), so none of them keeps a list of files of its own.
    """
    return copy_handler(handler_dir, dest_root), copy_models(models_dir, dest_root)


def read_nets(model_dir: Path) -> dict:
    """The manifest's nets (handler.manifest.NetSpec by key), read by the runtime's own reader.

    handler/manifest.py is stdlib only; it is imported without running handler/__init__.py (which
    loads and warms every net), and the bare package is dropped again so a later `import handler` is
    the real one.
    """
    bare = "handler" not in sys.modules
    if bare:
        package = types.ModuleType("handler")
        package.__path__ = [str(ROOT / "handler")]
        sys.modules["handler"] = package
    try:
        reader = importlib.import_module("handler.manifest")
        errors = importlib.import_module("handler.errors")
    finally:
        if bare:
            for name in [m for m in sys.modules if m == "handler" or m.startswith("handler.")]:
                del sys.modules[name]
    try:
        return reader.read_manifest(model_dir)
    except errors.ModelError as exc:
        raise SystemExit(f"error: {exc}") from None


def copy_models(src: Path, dest_root: Path) -> int:
    if not src.is_dir():
        raise SystemExit(f"error: model directory {src} does not exist (run `make models`)")
    picked = sorted({p for pat in MODEL_INCLUDE for p in src.glob(pat) if p.is_file()})
    if not any(p.suffix == ".onnx" for p in picked):
        raise SystemExit(f"error: no model weights (*.onnx) in {src} (run `make models`)")
    # Every file manifest.json names (nets.*.files.*.name) must be in the package:
    # the handler checks them all (presence and size) at import time.
    manifest = src / "manifest.json"
    if manifest.is_file():
        nets = read_nets(src)
        named = {path.relative_to(src.resolve()).as_posix() for spec in nets.values() for path in spec.files.values()}
        # Weights the manifest no longer names (e.g. age-v1.onnx, left by an older `make models`) stay out.
        picked = [p for p in picked if p.relative_to(src).as_posix() in named or not p.name.endswith(WEIGHT_SUFFIXES)]
        missing = sorted(named - {p.relative_to(src).as_posix() for p in picked})
        if missing:
            raise SystemExit(
                f"error: {manifest} names {', '.join(missing)}, which "
                + (
                    "MODEL_INCLUDE in infra/package.py does not match"
                    if all((src / m).is_file() for m in missing)
                    else f"are missing from {src} (run `make models`)"
                )
            )
    for s in picked:
        d = dest_root / "models" / s.relative_to(src)
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)
    verify_model_hashes(dest_root / "models")
    return len(picked)


def verify_model_hashes(models: Path) -> None:
    """Every manifest file in the staged tree has its size and sha256: the build checks the hash,
    so the function need only check sizes at start-up (docs/decisions.md, "Model files")."""
    manifest = models / "manifest.json"
    if not manifest.is_file():
        return
    for spec in read_nets(models).values():
        for role, path in spec.files.items():
            size, sha256 = spec.expected[role]
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
            if path.stat().st_size != size or digest.hexdigest() != sha256:
                raise SystemExit(f"error: {path.name} does not match models/manifest.json's size and sha256 "
                                 "(run `make models`)")


# --------------------------------------------------------------------------- #
# zipping
# --------------------------------------------------------------------------- #
def write_zip(tree: Path, zip_path: Path) -> None:
    tmp = zip_path.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel, path in iter_files(tree):
            mode = path.stat().st_mode
            perm = 0o755 if mode & stat.S_IXUSR else 0o644
            info = zipfile.ZipInfo(rel, date_time=FIXED_DATE_TIME)
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = (stat.S_IFREG | perm) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info._compresslevel = 9  # honoured by ZipFile.open(info, "w")
            with open(path, "rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, zip_path)


# --------------------------------------------------------------------------- #
# verification
# --------------------------------------------------------------------------- #
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


# --------------------------------------------------------------------------- #
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


if __name__ == "__main__":
    sys.exit(main())
