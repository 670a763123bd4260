"""handler/ is exactly what runs: every module in it is imported, directly or not, by an entry point the
deploy files name, so the zip and the image can take handler/ whole (dev tools live in evaluation/ and tools/).

The entry points are read from the files that deploy them, not listed here: a new way in is found as soon as
a deploy file names it, and a dev tool added to handler/ fails this test."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDLER = ROOT / "handler"


def entry_points() -> dict[str, str]:
    """{module: the file that names it} for every way the deployed code is started."""
    found: dict[str, str] = {}

    def scan(rel: str, pattern: str) -> None:
        for module in re.findall(pattern, (ROOT / rel).read_text()):
            found.setdefault(module, rel)

    scan("template.yaml", r"Handler:\s*(handler(?:\.\w+)*)\.\w+\s")           # Lambda: module.function
    scan("infra/Dockerfile", r'CMD \["(handler(?:\.\w+)*)\.\w+"\]')           # the image's handler
    deploy = (ROOT / "infra/gcp/deploy.sh").read_text()                     # Cloud Run functions: main.py
    for target in re.findall(r"--entry-point=(\w+)", deploy):               # imports each --entry-point
        scan("infra/gcp/deploy.sh", rf"(?m)^from (handler(?:\.\w+)*) import .*\b{target}\b")
    scan("infra/gcp/job.yaml", r'"-m",\s*"(handler(?:\.\w+)*)"')              # the Cloud Run job
    scan("README.md", r"python -m (handler)\b")                               # the CLI: handler/__main__.py
    return {("handler.__main__" if m == "handler" else m): rel for m, rel in found.items()}


def module_path(name: str) -> Path | None:
    """handler/<name>.py, or the package's __init__.py, for a dotted handler module name."""
    rel = Path(*name.split("."))
    for path in (ROOT / rel.with_suffix(".py"), ROOT / rel / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported(path: Path) -> set[str]:
    """The handler modules *path* imports anywhere (lazy imports inside functions too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "handler"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "handler":
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if module_path(f"{node.module}.{a.name}")}
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
    return out | {".".join(m.split(".")[:k]) for m in out for k in range(1, m.count(".") + 1)}


def reachable(starts: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [*starts, "handler"]
    while todo:
        name = todo.pop()
        if name in seen or (path := module_path(name)) is None:
            continue
        seen.add(name)
        todo.extend(imported(path) - seen)
    return seen


def test_the_deploy_files_name_every_way_in() -> None:
    points = entry_points()
    assert set(points) == {"handler.aws", "handler.gcp", "handler.gcs_job", "handler.__main__"}, points
    assert all(module_path(m) for m in points)


def test_every_handler_module_is_reachable_from_an_entry_point() -> None:
    """A module no entry point imports is dev-only (it belongs in evaluation/ or tools/) or dead."""
    modules = {f"handler.{p.stem}" if p.stem != "__init__" else "handler" for p in HANDLER.glob("*.py")}
    unreached = sorted(modules - reachable(list(entry_points())))
    assert not unreached, f"{unreached}: imported by no entry point; move dev tools to evaluation/ or tools/"


def test_every_other_file_in_handler_is_read_by_a_module() -> None:
    """handler/web/index.html and any other data file ships only because a module reads it."""
    sources = "".join(p.read_text() for p in HANDLER.glob("*.py"))
    data = [p for p in HANDLER.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts]
    assert data
    for path in data:
        assert path.name in sources, f"{path.relative_to(ROOT)} is read by no handler module"


def defined_names(path: Path) -> set[str]:
    """Names a module defines or imports at its top level (what `from module import name` can take)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_dev_tools_import_names_that_exist() -> None:
    """tools/, evaluation/ and bulk/ run by hand, not in the suite: an import a move left stale fails here."""
    stale = []
    for path in sorted(p for d in ("tools", "evaluation", "bulk") for p in (ROOT / d).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module
                    and node.module.split(".")[0] in ("handler", "evaluation", "bulk")):
                continue
            module = module_path(node.module)
            if module is None:
                stale.append(f"{path.relative_to(ROOT)}: no module {node.module}")
                continue
            missing = [a.name for a in node.names
                       if not module_path(f"{node.module}.{a.name}") and a.name not in defined_names(module)]
            stale += [f"{path.relative_to(ROOT)}: {node.module} has no {name}" for name in missing]
    assert not stale, stale
