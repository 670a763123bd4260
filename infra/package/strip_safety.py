"""Stripping symbol tables from shared libraries, only where an ELF read shows the loaded image unchanged.

The ELF64 reader is by hand (struct) because the build is stdlib only: it reads section and
program headers, no more.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path


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

