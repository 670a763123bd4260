"""Which photos a folder run analyses: the files, folders (recursively) and globs named, in a fixed order."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

# What a folder walk picks up, by extension (any case): every format the service reads, and HEIC/HEIF so
# such photos get their error line (with how to convert them) instead of vanishing from the results.
EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".bmp", ".dib", ".avif", ".tif",
                        ".tiff", ".gif", ".heic", ".heif"})


@dataclass(frozen=True)
class Photo:
    """One photo file: where it is, its name in the results (`key`) and under --out-dir (`mirror`), and the
    size and mtime a re-run compares to skip it."""

    path: str
    key: str
    mirror: str
    size: int
    mtime: float


class NotFound(Exception):
    """A path named on the command line that is neither a file nor a folder and matches nothing as a glob."""


def _walk(folder: Path, skip: Path | None) -> list[Path]:
    """Image files under `folder`, hidden files and folders and the `skip` folder (our own output) left out."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".") and (skip is None or _absolute(Path(top, d)) != skip)]
        found += [Path(top, f) for f in files if not f.startswith(".") and Path(f).suffix.lower() in EXTENSIONS]
    return found


def _absolute(path: Path) -> Path:
    """Absolute and normalised, but symlinks kept: a linked photo is named where it was found."""
    return Path(os.path.abspath(path))


def _key(path: Path, base: Path) -> str:
    """The photo's name in the results: relative to the results' folder when inside it, else absolute."""
    return (path.relative_to(base) if path.is_relative_to(base) else path).as_posix()


def find_photos(paths: list[str], base: Path, skip: Path | None = None) -> list[Photo]:
    """Every photo the paths name, each once, sorted by key; NotFound names the first path that names none.

    A file named is taken whatever its extension; folders give the image files below them. `base` is
    the folder the keys are relative to; `mirror` is relative to the inputs' common folder.
    """
    files: dict[Path, None] = {}
    roots = []
    skip = _absolute(skip) if skip else None
    for arg in paths:
        path = _absolute(Path(arg))
        if path.is_dir():
            roots.append(path)
            files.update(dict.fromkeys(map(_absolute, _walk(path, skip))))
        elif path.exists():
            files[path] = None
            roots.append(path.parent)
        elif glob.has_magic(arg) and (matches := sorted(glob.glob(arg, recursive=True))):
            for match in map(_absolute, map(Path, matches)):
                files.update(dict.fromkeys(map(_absolute, _walk(match, skip)) if match.is_dir() else [match]))
                roots.append(match if match.is_dir() else match.parent)
        else:
            raise NotFound(arg)
    common = Path(os.path.commonpath(roots))
    base = _absolute(base)
    photos = []
    for path in files:
        try:
            stat = path.stat()
            size, mtime = stat.st_size, stat.st_mtime
        except OSError:  # gone or unreadable since it was listed: its error line says so
            size, mtime = -1, 0.0
        photos.append(Photo(str(path), _key(path, base), path.relative_to(common).as_posix(), size, mtime))
    return sorted(photos, key=lambda p: p.key)
