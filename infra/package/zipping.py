"""The deterministic zip: sorted entries, fixed timestamps, normalised permissions, DEFLATE level 9."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from pathlib import Path

from .sizes import iter_files

# 1980-01-01 00:00:00 is the earliest timestamp a zip entry can hold.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)


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

