"""The documentation stays walkable: every relative link in README.md, docs/ and the READMEs under infra/
and tests/ resolves to a file (and, with a #fragment, to a heading in it), and tests/README.md names every
handler module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         *sorted(p for d in ("infra", "tests") for p in (ROOT / d).rglob("README.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor in a markdown file, with GitHub's -1, -2 suffixes for repeats."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(page: Path) -> list[str]:
    """Relative link targets outside code blocks (web addresses and mailto are not ours to check)."""
    text = FENCE.sub("", page.read_text())
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    bad = []
    for target in links(page):
        path, _, fragment = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            bad.append(f"{target}: no heading #{fragment} in {dest.relative_to(ROOT)}")
    assert not bad, f"{page.relative_to(ROOT)}: " + "; ".join(bad)


def test_slug_matches_githubs_rule() -> None:
    assert slug("Who may call it: authentication, throttling, a spending cap") == \
        "who-may-call-it-authentication-throttling-a-spending-cap"
    assert slug("Backfill: measured, and 1 M images") == "backfill-measured-and-1-m-images"


def test_tests_readme_names_every_handler_module() -> None:
    """A module added, moved or renamed in handler/ must get its row in tests/README.md."""
    text = (ROOT / "tests" / "README.md").read_text()
    modules = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "handler").glob("*.py"))
    missing = [m for m in modules if f"`{m}`" not in text]
    assert not missing, f"tests/README.md has no row for {missing}: say which tests cover them"
