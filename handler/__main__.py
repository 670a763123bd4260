"""Command line: analyse one photo and print the JSON result.

    python -m handler photo.jpg [--out annotated.jpg] [--redacted redacted.jpg] [--max-faces N] [--min-confidence C]
                                [--detail auto|fast|full|...]
    python -m handler photo.jpg --url https://<api>/ [--token JWT]   # a deployed service (big photos via POST /uploads)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from handler import options
from handler.errors import RequestError
from handler.options import Options
from handler.service import analyze_bytes, parse_options

# The images are asked for by naming a file to write: --out sets `annotate`, --redacted the redacted image
# (both may be written at once, which `output` can't say), so these two options get no flag of their own.
_BY_FILE = ("annotate", "output")


def cli_options(args: argparse.Namespace) -> Options:
    """The options a command line asks for: the table's flags read as text, the images by the files named."""
    given = {s.name: getattr(args, s.name) for s in options.TABLE
             if s.name not in _BY_FILE and getattr(args, s.name, None) is not None}
    request_options = {**options.from_text(given), "annotate": args.out is not None}
    return dataclasses.replace(parse_options(request_options), redact=args.redacted is not None)


def build_parser() -> argparse.ArgumentParser:
    """The command line, its option flags made from the options table."""
    parser = argparse.ArgumentParser(
        prog="python -m handler",
        description="Detect faces in a photo and estimate gender and age; prints the result as JSON. "
                    "Defaults come from the environment (see the README's configuration table).")
    parser.add_argument("photo", type=Path, help="image file (JPEG, PNG, WebP or BMP)")
    parser.add_argument("--out", type=Path, help="write the annotated image (JPEG) here")
    parser.add_argument("--redacted", type=Path, help="write the redacted image (JPEG, every face pixelated) here")
    parser.add_argument("--url", help="analyse with the deployed service at this base URL instead of locally "
                                      "(photos over the request limit go through POST /uploads)")
    parser.add_argument("--token", help="with --url: a bearer token (ApiAuth=jwt deployments)")
    for spec in options.TABLE:
        if spec.name not in _BY_FILE:  # text, read by the table as the query string is
            parser.add_argument("--" + spec.name.replace("_", "-"), dest=spec.name, metavar=spec.name.upper(),
                                help=f"{spec.doc}; {spec.rule()}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        data = args.photo.read_bytes()
        if args.url:
            from handler.remote import analyze_remote

            print(json.dumps(analyze_remote(args.url, data, token=args.token), indent=2))
            return 0
        outcome = analyze_bytes(data, cli_options(args))
    except OSError as exc:
        print(json.dumps({"error": {"code": "unreadable_file", "message": str(exc)}}), file=sys.stderr)
        return 2
    except RequestError as error:
        print(json.dumps(error.to_dict()), file=sys.stderr)
        return 1
    if args.out is not None and outcome.annotated_jpeg is not None:
        args.out.write_bytes(outcome.annotated_jpeg)
    if args.redacted is not None and outcome.redacted_jpeg is not None:
        args.redacted.write_bytes(outcome.redacted_jpeg)
    print(json.dumps(outcome.result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
