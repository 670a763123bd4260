"""The folder form of `python -m handler`: many photos on this machine, in N processes, resumable.

Each photo goes through the one per-photo flow (handler/service.py's analyze_file, i.e. the service's
analyze_bytes) with the options the command line gave. Worker processes are spawned, not forked: each
imports handler (which loads and warms every net once) in a fresh interpreter, so no OpenMP or OpenCV
thread pool is inherited half-alive from the parent. The parent alone writes the results, one whole
line per photo, in the photos' sorted order whatever order the workers finish in.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from bulk.photos import NotFound, Photo, find_photos
from bulk.progress import Progress
from bulk.results import LineWriter, read_results, write_csv
from handler.errors import RequestError
from handler.options import Options

DEFAULT_JSONL = Path("faceread.jsonl")
_worker: dict = {}


def cores() -> int:
    """The cores this process may run on (its CPU affinity, which a container or taskset may narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def image_path(out_dir: Path, photo: Photo, redacted: bool) -> Path:
    """Where a photo's drawn image goes: its place in the input tree, under out_dir, named as the
    upload triggers name theirs."""
    return out_dir / (photo.mirror + (".redacted.jpg" if redacted else ".annotated.jpg"))


def _head(photo: Photo) -> dict:
    """What a result line starts with: the photo's key, and the size and mtime a re-run compares."""
    return {"path": photo.key, "size": photo.size, "mtime": photo.mtime}


def analyze_photo(photo: Photo, opts: Options, out_dir: Path | None, redacted: bool) -> dict:
    """One photo's result line: its key, size and mtime, then the API's result or its error."""
    from handler.service import analyze_file

    head = _head(photo)
    try:
        outcome = analyze_file(Path(photo.path), opts)
    except OSError as exc:
        return {**head, "error": {"code": "unreadable_file", "message": f"{exc.strerror or exc}"}}
    except RequestError as error:
        return {**head, **error.to_dict()}
    except Exception as exc:  # noqa: BLE001 - one photo's surprise must not end a run of thousands
        return {**head, "error": {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}}
    if out_dir is not None:
        target = image_path(out_dir, photo, redacted)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(outcome.redacted_jpeg if redacted else outcome.annotated_jpeg)
        os.replace(tmp, target)  # an image under its name is always whole
    return {**head, **outcome.result}


def _is_done(photo: Photo, line: dict | None, out_dir: Path | None, redacted: bool) -> bool:
    """Already in the results, unchanged, and with its image when --out-dir asks for one."""
    if line is None or (line.get("size"), line.get("mtime")) != (photo.size, photo.mtime):
        return False
    return out_dir is None or "error" in line or image_path(out_dir, photo, redacted).exists()


def _init_worker(opts: Options, out_dir: Path | None, redacted: bool, threads: int, parent: int) -> None:
    import logging

    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the run; a worker's traceback is noise
    cv2.setNumThreads(threads)  # N processes share the cores: one pool of `cores` threads each would fight
    for handler in logging.getLogger("faceread").handlers:  # stdout is the parent's; logs go to stderr
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    _worker.update(opts=opts, out_dir=out_dir, redacted=redacted)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A killed parent can't stop its pool: each worker leaves by itself within a second instead of idling."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _work(item: tuple[int, Photo]) -> dict:
    return analyze_photo(item[1], _worker["opts"], _worker["out_dir"], _worker["redacted"])


def _one_pool(queue: deque, setup: tuple, jobs: int) -> Generator[tuple[int, dict], None, list]:
    """Analyse the queued (index, photo) items in `jobs` spawned workers, yielding (index, line) as each
    finishes; returns the items that were in flight if a worker died (a native crash, the OOM killer).

    concurrent.futures rather than multiprocessing.Pool: Pool replaces a dead worker and waits for its
    task's result forever; the executor breaks, so the run can go on. Only 2 x jobs photos are handed out
    at a time, so a stop or a break has little in flight.
    """
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=setup)
    inflight: dict = {}
    try:
        while queue or inflight:
            while queue and len(inflight) < 2 * jobs:
                item = queue.popleft()
                inflight[pool.submit(_work, item)] = item
            for future in wait(inflight, return_when=FIRST_COMPLETED).done:
                try:
                    line = future.result()
                except BrokenProcessPool:
                    return list(inflight.values())
                yield inflight.pop(future)[0], line
        return []
    finally:
        # Stop at once, not after the photos in flight: no public way before Python 3.14's terminate_workers().
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _spawned(todo: list[Photo], setup: tuple, jobs: int) -> Iterator[tuple[int, dict]]:
    """(index, line) for every photo, unordered. After a worker died, the photos it may have held are
    redone one at a time, each in a pool of its own: the one that kills that too gets an error line."""
    queue = deque(enumerate(todo))
    while queue:
        lost = yield from _one_pool(queue, setup, jobs)
        for item in lost:
            if (yield from _one_pool(deque([item]), setup, 1)):
                yield item[0], {**_head(item[1]), "error": {
                    "code": "internal_error", "message": "the process analysing this photo died (a crash in a "
                                                         "decoder or a net, or out of memory)"}}


def _results(todo: list[Photo], opts: Options, out_dir: Path | None, redacted: bool, jobs: int) -> Iterator[dict]:
    """Each photo's line, in `todo`'s order: in this process for one job, else from `jobs` spawned workers."""
    if jobs == 1:
        for photo in todo:
            yield analyze_photo(photo, opts, out_dir, redacted)
        return
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # N workers' start-up lines would bury the progress bar
    setup = (opts, out_dir, redacted, max(1, cores() // jobs), os.getpid())
    waiting: dict[int, dict] = {}
    written = 0
    for index, line in _spawned(todo, setup, jobs):
        waiting[index] = line
        while written in waiting:  # in order: a fast photo waits for the slower ones sorted before it
            yield waiting.pop(written)
            written += 1


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # a kill (SIGTERM) ends the run as Ctrl-C does: whole lines, the CSV, a summary


def run(parser: argparse.ArgumentParser, args: argparse.Namespace, opts: Options) -> int:
    """Analyse every photo the paths name that the results don't hold yet; 0 if none failed, 1 if any did,
    130 if stopped (re-run to go on)."""
    jobs = cores() if args.jobs is None else args.jobs
    if jobs < 1:
        parser.error("--jobs N needs N >= 1")
    jsonl = args.jsonl or DEFAULT_JSONL
    redacted = args.redacted is not None
    try:
        photos = find_photos(args.paths, jsonl.resolve().parent, skip=args.out_dir)
    except NotFound as missing:
        parser.error(f"{missing}: no such file or folder (nor a glob that matches one)")
    if not photos:
        parser.error(f"no photos in {', '.join(args.paths)}")
    results = read_results(jsonl)
    todo = [p for p in photos if not _is_done(p, results.get(p.key), args.out_dir, redacted)]
    skipped = len(photos) - len(todo)
    jobs = max(1, min(jobs, len(todo)))
    print(f"{len(photos):,} photos: {len(todo):,} to analyse in {jobs} process{'es' if jobs > 1 else ''}"
          + (f", {skipped:,} skipped (already in {jsonl})" if skipped else ""), file=sys.stderr)
    signal.signal(signal.SIGTERM, _stop)
    progress, writer, stopped, started = Progress(len(todo)), LineWriter(jsonl), False, time.monotonic()
    try:
        for line in _results(todo, opts, args.out_dir, redacted, jobs):
            writer.write(line)
            results[line["path"]] = line
            progress.update(len(line.get("faces", [])))
    except KeyboardInterrupt:
        stopped = True
    finally:
        writer.close()
        progress.close()
    elapsed = time.monotonic() - started
    lines = [results[p.key] for p in photos if p.key in results]
    if args.csv:
        write_csv(args.csv, lines)
    summary = {"photos": len(photos), "done": progress.done, "skipped": skipped,
               "failed": sum("error" in line for line in lines), "faces": progress.faces,
               "seconds": round(elapsed, 2), "photos_per_second": round(progress.done / elapsed, 2) if elapsed else 0,
               "jobs": jobs, "jsonl": str(jsonl), "stopped": stopped}
    print(f"{progress.done:,} done in {elapsed:.1f} s ({summary['photos_per_second']} photos/s), {progress.faces:,} "
          f"faces; {summary['failed']:,} of {len(photos):,} photos failed (see their error lines); results in "
          f"{jsonl}" + (f", table in {args.csv}" if args.csv else "")
          + ("; stopped: run the same command again to go on" if stopped else ""), file=sys.stderr)
    print(json.dumps(summary))
    return 130 if stopped else 1 if summary["failed"] else 0
