"""The request options: one table (name, type, bounds, string parsing, doc) for every way in.

The HTTP JSON body's `options` object carries typed JSON values; the HTTP query string
(`?annotate=1`), S3 Batch Operations userArguments, the command line (`python -m handler`)
and the operator's `--option NAME=VALUE` (bulk) carry text, read by `from_text` with the
same rules everywhere, so `?annotate=1` and userArguments {"annotate": "1"} mean the same.
Every value then goes through `Options.merged`, the one validation. A bad value is a
RequestError (400, code invalid_options) naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handler.detection import DETAILS
from handler.errors import RequestError

_TRUE, _FALSE = ("true", "1"), ("false", "0")


@dataclass(frozen=True)
class OptionSpec:
    """One request option: its JSON type, its bounds or choices, and what it does.

    `high=None` on max_faces means the deployment's MAX_FACES: a request can lower a limit, never raise it.
    """

    name: str
    kind: str  # "bool", "int", "float" or "choice"
    doc: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()

    def rule(self, high: float | None = None) -> str:
        """What a valid value is, in words (the error message's second half)."""
        high = self.high if high is None else high
        if self.kind == "bool":
            return "true or false (as text: true, false, 1 or 0)"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        number = "an integer" if self.kind == "int" else "a number"
        return f"{number} in [{_num(self.low)}, {_num(high)}]"

    def error(self, high: float | None = None) -> RequestError:
        return RequestError(f"option `{self.name}` must be {self.rule(high)}", code="invalid_options")

    def parse_text(self, raw: str) -> Any:
        """A text value (query string, userArguments, command line) as its JSON value; RequestError if unreadable.

        Case and surrounding spaces don't matter; bounds are checked later, by `check`.
        """
        text = raw.strip().lower()
        if self.kind == "bool":
            if text not in _TRUE + _FALSE:
                raise self.error()
            return text in _TRUE
        if self.kind == "choice":
            return text
        try:
            value = int(text) if self.kind == "int" else float(text)
        except ValueError:
            raise self.error() from None
        return value

    def check(self, value: Any, high: float | None = None) -> Any:
        """The JSON value if valid (numbers as the option's type), else RequestError naming the option."""
        high = self.high if high is None else high
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "choice":
            ok = isinstance(value, str) and value in self.choices
        else:
            types = (int,) if self.kind == "int" else (int, float)
            # NaN and infinities fail the comparison; big integers are never turned into floats.
            ok = isinstance(value, types) and not isinstance(value, bool) and self.low <= value <= high
        if not ok:
            raise self.error(high)
        return float(value) if self.kind == "float" else value


def _num(x: float | None) -> str:
    return "MAX_FACES" if x is None else f"{x:g}"


TABLE: tuple[OptionSpec, ...] = (
    OptionSpec("annotate", "bool", "return the annotated image (boxes and labels); default true"),
    OptionSpec("output", "choice", "which image the answer carries: the annotated one, or the redacted one "
                                   "(faces pixelated) in its place", choices=("annotated", "redacted")),
    OptionSpec("detail", "choice", "which detection passes run (fast: a reduced decode; full: every pass)",
               choices=DETAILS),
    OptionSpec("min_confidence", "float", "detector confidence threshold (default MIN_CONFIDENCE)",
               low=0.05, high=0.99),
    OptionSpec("max_faces", "int", "analyse at most this many faces, best first (default and ceiling MAX_FACES)",
               low=1, high=None),
)
BY_NAME = {spec.name: spec for spec in TABLE}


def from_text(values: dict[str, str]) -> dict[str, Any]:
    """Text values (all the table's ways in but the JSON body) as JSON values; unknown names pass through
    for `Options.merged` to refuse, non-text values are left as they are."""
    return {name: BY_NAME[name].parse_text(value) if name in BY_NAME and isinstance(value, str) else value
            for name, value in values.items()}


def describe() -> str:
    """One line per option, for command-line help."""
    return "; ".join(f"{s.name} ({s.rule()}): {s.doc}" for s in TABLE)


@dataclass(frozen=True)
class Options:
    """Per-request options; limits can be lowered by a request, never raised."""

    min_confidence: float
    max_faces: int
    min_gender_confidence: float
    min_face_px: int
    min_sharpness: float
    annotate: bool = True  # the annotated image (boxes and labels)
    redact: bool = False  # the redacted image (faces pixelated, nothing drawn)
    detail: str = "auto"  # handler.detection.DETAILS: which detection passes run
    detect_max_side: int = 2048  # long side of the finest detection pass (DETECT_MAX_SIDE; not per request)

    def merged(self, request: Any) -> Options:
        """Apply a request's `options` object (JSON values, see `from_text`); raise RequestError on a bad value."""
        if request is None:
            return self
        if not isinstance(request, dict):
            raise RequestError("`options` must be a JSON object", code="invalid_options")
        unknown = sorted(set(request) - set(BY_NAME))
        if unknown:
            raise RequestError(f"{len(unknown)} unknown option(s); known: {', '.join(sorted(BY_NAME))}",
                               code="invalid_options")
        # Checked in the table's order, so the first bad option named is the same whichever way it came in.
        value = {s.name: s.check(request[s.name], self.max_faces if s.name == "max_faces" else None)
                 for s in TABLE if s.name in request}
        changes: dict[str, Any] = {k: v for k, v in value.items() if k in ("annotate", "detail", "min_confidence",
                                                                           "max_faces")}
        if "output" in value:
            if value.get("annotate") is False:
                raise RequestError("option `output` needs an image: drop annotate=false", code="invalid_options")
            redact = value["output"] == "redacted"
            changes.update(annotate=not redact, redact=redact)
        return Options(**{**self.__dict__, **changes})
