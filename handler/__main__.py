"""Command line: analyse one photo and print the JSON result.

    python -m handler photo.jpg [--out annotated.jpg] [--redacted redacted.jpg] [--max-faces N] [--min-confidence C]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from handler.errors import RequestError
from handler.service import analyze_bytes, parse_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handler",
        description="Detect faces in a photo and estimate gender and age; prints the result as JSON. "
                    "Defaults come from the environment (see the README's configuration table).")
    parser.add_argument("photo", type=Path, help="image file (JPEG, PNG, WebP or BMP)")
    parser.add_argument("--out", type=Path, help="write the annotated image (JPEG) here")
    parser.add_argument("--redacted", type=Path, help="write the redacted image (JPEG, every face pixelated) here")
    parser.add_argument("--max-faces", type=int, help="analyse at most this many faces (<= MAX_FACES)")
    parser.add_argument("--min-confidence", type=float, help="detector confidence threshold, 0.05-0.99")
    args = parser.parse_args(argv)
    request_options = {k: v for k, v in (("max_faces", args.max_faces), ("min_confidence", args.min_confidence),
                                         ("annotate", args.out is not None)) if v is not None}
    try:
        data = args.photo.read_bytes()
        options = dataclasses.replace(parse_options(request_options), redact=args.redacted is not None)
        outcome = analyze_bytes(data, options)
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
