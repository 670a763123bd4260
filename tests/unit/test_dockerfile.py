"""The container image ships the zip's handler/ and models/, file for file.

No Docker daemon runs here, so the image is not built: infra/Dockerfile is read instead and
its COPY / RUN rm instructions are replayed, as Docker would, against a build context made the
way `make image` makes it (infra/package --app-only). The tree that lands in the image's
handler/ and models/ must equal what infra/package/stage.py's stage_app puts into the zip. What this
can't show: that the pip install and the base image work (the zip's own smoke test covers the
same requirements on a python3.12; see tests/e2e/test_package.py).
"""

from __future__ import annotations

import fnmatch
import glob
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "infra" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
TASK_ROOT = "${LAMBDA_TASK_ROOT}"
sys.path.insert(0, str(ROOT / "infra"))
from package.stage import stage_app  # noqa: E402


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def ignored(rel: str, patterns: list[str]) -> bool:
    """Is context path *rel* left out of the build context by .dockerignore (last match wins)?"""
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = rel.split("/")
        # a pattern matching a parent folder covers everything under it
        if any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts) + 1)):
            verdict = not negate
    return verdict


def replay(context: Path) -> dict[str, bytes]:
    """Files under the image's task root after the Dockerfile's COPY and `rm` steps: {path: bytes}."""
    patterns = []
    if DOCKERIGNORE.is_file():
        patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]
    image: dict[str, bytes] = {}
    for word, args in instructions():
        if word == "COPY":
            *sources, dest = shlex.split(args)
            assert dest.startswith(TASK_ROOT), f"COPY outside the task root: {args}"
            dest = dest[len(TASK_ROOT):].strip("/")
            for source in sources:
                matches = sorted(glob.glob(str(context / source)))
                assert matches, f"COPY {source}: nothing in the build context matches"
                for match in map(Path, matches):
                    files = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
                    for f in files:
                        rel = f.relative_to(context).as_posix()
                        assert not ignored(rel, patterns), f"COPY {source}: {rel} is excluded by .dockerignore"
                        inside = f.name if match.is_file() else f.relative_to(match).as_posix()
                        image["/".join(x for x in (dest, inside) if x)] = f.read_bytes()
        elif word == "RUN":
            for command in args.split("&&"):
                argv = shlex.split(command)
                if argv[:1] == ["rm"]:
                    for target in (a for a in argv[1:] if a.startswith(TASK_ROOT)):
                        gone = target[len(TASK_ROOT):].strip("/")
                        image = {k: v for k, v in image.items() if k != gone and not k.startswith(gone + "/")}
    return image


def app_tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def build_context(tmp_path: Path) -> Path:
    """The repository as Docker's build context, with build/app/ staged the way `make app` does."""
    context = tmp_path / "context"
    context.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in ("build", ".git", ".venv", "node_modules"):
            (context / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    subprocess.run([sys.executable, str(ROOT / "infra" / "package"), "--app-only", "--out",
                    str(context / "build")], check=True, capture_output=True)
    return context


def test_image_ships_the_zips_handler_and_models(tmp_path: Path) -> None:
    zip_app = tmp_path / "zip"
    stage_app(ROOT / "handler", ROOT / "models", zip_app)  # what infra/package/ puts in the zip
    expected = app_tree(zip_app)
    assert "models/calibration.json" in expected and "handler/aws.py" in expected

    shipped = {k: v for k, v in replay(build_context(tmp_path)).items()
               if k.startswith(("handler/", "models/")) and "__pycache__" not in k}
    missing, extra = sorted(expected.keys() - shipped.keys()), sorted(shipped.keys() - expected.keys())
    assert not missing and not extra, f"image lacks {missing}; image has, the zip not: {extra}"
    assert [k for k in expected if shipped[k] != expected[k]] == []


def test_dockerfile_keeps_no_file_list_of_its_own() -> None:
    """handler/ and models/ reach the image only through the staged folder: a file made dev-only
    (or a model added) in infra/package/ needs no second edit here."""
    sources = [s for word, args in instructions() if word == "COPY" for s in shlex.split(args)[:-1]]
    assert sources == ["requirements-lambda.txt", "build/app/"], sources
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    assert not re.search(r"\brm\b", runs), "the Dockerfile removes files itself: exclusions belong to package/stage.py"


def test_make_app_target_stages_the_folder_the_dockerfile_copies() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\t\$\(BIN\)/python infra/package --app-only --out build/$", makefile, re.M)
    assert re.search(r"^image: app$", makefile, re.M)


def test_dockerignore_reading() -> None:
    """Last match wins and a folder pattern covers what is under it, as in Docker's own reader."""
    assert ignored("handler/x.py", ["*", "!build/app/"])
    assert not ignored("build/app/handler/x.py", ["*", "!build/app/"])
    assert ignored("build/lambda/cv2/x.so", ["*", "!build/app/"])
    assert not ignored("handler/x.py", [])
