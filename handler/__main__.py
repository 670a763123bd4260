"""Command line: analyse one photo and print the JSON result, or a folder of photos into JSON Lines.

    python -m handler photo.jpg [--out annotated.jpg] [--redacted redacted.jpg] [--max-faces N] [--min-confidence C]
                                [--detail auto|fast|full|...]
    python -m handler photo.jpg --url https://<api>/ [--token JWT]   # a deployed service (big photos via POST /uploads)
    python -m handler PATH... [--jsonl faceread.jsonl] [--csv faces.csv] [--out-dir DIR [--redacted]] [--jobs N]

The second form (folders, globs, several files, or any of its flags) is run by bulk/folder.py, which is
not part of the deployed package: this module only hands over, with the options read here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from handler import options
from handler.errors import RequestError
from handler.image_header import ACCEPTED
from handler.options import Options
from handler.service import analyze_file, parse_options

# The images are asked for by naming a file to write: --out sets `annotate`, --redacted the redacted image
# (both may be written at once, which `output` can't say), so these two options get no flag of their own.
_BY_FILE = ("annotate", "output")
# Flags only the folder form has: any of them, or more than one photo, selects it.
FOLDER_FLAGS = ("jsonl", "csv", "out_dir", "jobs")


def cli_options(args: argparse.Namespace) -> Options:
    """The options a command line asks for: the table's flags read as text, the images by the files named."""
    given = {s.name: getattr(args, s.name) for s in options.TABLE
             if s.name not in _BY_FILE and getattr(args, s.name, None) is not None}
    redact = args.redacted is not None
    annotate = args.out is not None or (getattr(args, "out_dir", None) is not None and not redact)
    request_options = {**options.from_text(given), "annotate": annotate}
    return dataclasses.replace(parse_options(request_options), redact=redact)


def build_parser() -> argparse.ArgumentParser:
    """The command line, its option flags made from the options table."""
    parser = argparse.ArgumentParser(
        prog="python -m handler",
        description="Detect faces in photos and estimate gender and age. One photo: the result as JSON on "
                    "stdout. Several photos, folders (searched recursively) or globs: one JSON line per photo "
                    "in --jsonl, resumable. Defaults come from the environment (see the README's "
                    "configuration table).")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help=f"photo files, folders or globs ({ACCEPTED}; HEIC/HEIF is refused with how to "
                             "convert it)")
    parser.add_argument("--out", type=Path, metavar="FILE", help="one photo: write the annotated image (JPEG) here")
    parser.add_argument("--redacted", nargs="?", const=True, metavar="FILE",
                        help="one photo: write the redacted image (JPEG, every face pixelated) to this file; "
                             "folder form: a switch, --out-dir gets redacted images instead of annotated ones")
    folder = parser.add_argument_group("folder form (several photos, folders or globs)")
    folder.add_argument("--jsonl", type=Path, metavar="FILE",
                        help="the results, one JSON line per photo; a re-run skips photos already in it "
                             "(default: faceread.jsonl here)")
    folder.add_argument("--csv", type=Path, metavar="FILE",
                        help="also write a table, one row per face, for spreadsheets")
    folder.add_argument("--out-dir", type=Path, metavar="DIR",
                        help="write each photo's annotated (or --redacted) JPEG here, mirroring the input "
                             "folders: NAME.annotated.jpg (NAME.redacted.jpg)")
    folder.add_argument("--jobs", type=int, metavar="N", help="processes analysing at once (default: the cores)")
    parser.add_argument("--url", help="one photo: analyse it with the deployed service at this base URL instead of "
                                      "locally (photos over the request limit go through POST /uploads)")
    parser.add_argument("--token", help="with --url: a bearer token (ApiAuth=jwt deployments)")
    for spec in options.TABLE:
        if spec.name not in _BY_FILE:  # text, read by the table as the query string is
            parser.add_argument("--" + spec.name.replace("_", "-"), dest=spec.name, metavar=spec.name.upper(),
                                help=f"{spec.doc}; {spec.rule()}")
    return parser


def is_folder_form(args: argparse.Namespace) -> bool:
    """More than one path, a folder or a glob, or a flag only the folder form has."""
    if len(args.paths) != 1 or any(getattr(args, name) is not None for name in FOLDER_FLAGS):
        return True
    path = Path(args.paths[0])
    return path.is_dir() or (not path.exists() and any(c in args.paths[0] for c in "*?["))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.redacted is not None and args.redacted is not True and (not args.paths or is_folder_form(args)):
        args.paths.append(args.redacted)  # folder form: --redacted is a switch, so a word after it is a PATH
        args.redacted = True
    if not args.paths:
        parser.error("name a photo, a folder or a glob")
    try:
        opts = cli_options(args)
    except RequestError as error:  # a bad option value: the API's 400 body, as for a bad photo
        print(json.dumps(error.to_dict()), file=sys.stderr)
        return 1
    if is_folder_form(args):
        if args.url is not None:
            parser.error("--url sends one photo to a deployed service; the folder form runs locally")
        if args.out is not None:
            parser.error("--out names one photo's image; with several photos use --out-dir")
        try:
            from bulk.folder import run
        except ImportError:  # the deployed package ships handler/ alone
            parser.error("the folder form needs the repository's bulk/ package (python -m handler from its root)")
        return run(parser, args, opts)
    if args.redacted is True:
        parser.error("--redacted needs a file to write for one photo (or use --out-dir)")
    try:
        if args.url:
            from handler.remote import analyze_remote

            print(json.dumps(analyze_remote(args.url, Path(args.paths[0]).read_bytes(), token=args.token), indent=2))
            return 0
        outcome = analyze_file(Path(args.paths[0]), opts)
    except OSError as exc:
        print(json.dumps({"error": {"code": "unreadable_file", "message": str(exc)}}), file=sys.stderr)
        return 2
    except RequestError as error:
        print(json.dumps(error.to_dict()), file=sys.stderr)
        return 1
    if args.out is not None and outcome.annotated_jpeg is not None:
        args.out.write_bytes(outcome.annotated_jpeg)
    if args.redacted is not None and outcome.redacted_jpeg is not None:
        Path(args.redacted).write_bytes(outcome.redacted_jpeg)
    print(json.dumps(outcome.result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
