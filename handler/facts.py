"""Job facts: what a job summary counts for one object (faces, and each analysed face's gender and age bucket).

One module writes them and reads them back, for every engine: as the JSON result's object
metadata (the skip rule's unchanged objects), and as the text that leads a Batch Operations
resultString (the completion report is all a Batch Operations job leaves behind). The text
carries counts, not labels, so every face counts whatever its label says (a child, an
uncertain age), and it stays within the 240-character resultString at MAX_FACES=100.
"""

from __future__ import annotations

import re
from collections import Counter

from handler.pipeline import AGE_BUCKETS

GENDERS = ("female", "male", "unknown")
BUCKET_LABELS = tuple(f"({lo}-{hi})" for lo, hi in AGE_BUCKETS)

# Object metadata on the JSON result (S3 `x-amz-meta-*`, GCS custom metadata): lower-case ASCII.
# At most MAX_FACES=100 faces: ~1.6 KB, under S3's 2 KB for all user metadata.
META_FACES, META_GENDERS, META_AGES = "faceread-faces", "faceread-genders", "faceread-age-buckets"

# "2 faces [female 1, male 1; (25-32) 1, (38-43) 1]": the count, then the tallies (absent without analysed faces).
_TEXT = re.compile(r"(\d+) faces? ?(?:\[([^\]]*)\])?")
_TALLY = re.compile(r"(\S+) (\d+)$")


def from_result(result: dict) -> dict:
    """Face count, and gender and age bucket of each analysed face, from a result JSON."""
    analyzed = [f for f in result["faces"] if f.get("analyzed")]
    return {"faces": result["faces_detected"],
            "genders": [str((f.get("gender") or {}).get("value")) for f in analyzed],
            "age_buckets": [str((f.get("age") or {}).get("bucket")) for f in analyzed]}


def to_metadata(facts: dict) -> dict[str, str]:
    """The facts as object metadata."""
    return {META_FACES: str(facts["faces"]), META_GENDERS: ",".join(facts["genders"]),
            META_AGES: ",".join(facts["age_buckets"])}


def from_metadata(meta: dict[str, str]) -> dict:
    """The facts back from object metadata (absent fields: no faces)."""
    def items(name: str) -> list[str]:
        return [x for x in meta.get(name, "").split(",") if x]

    faces = meta.get(META_FACES, "0")
    return {"faces": int(faces) if faces.isdigit() else 0, "genders": items(META_GENDERS),
            "age_buckets": items(META_AGES)}


def _tally(values: list[str], order: tuple[str, ...]) -> str:
    counts = Counter(values)
    known = [v for v in order if counts[v]] + sorted(v for v in counts if v not in order)
    return ", ".join(f"{v} {counts[v]}" for v in known)


def to_text(facts: dict) -> str:
    """'2 faces [female 1, male 1; (25-32) 1, (38-43) 1]': the facts as a resultString's lead."""
    faces = facts["faces"]
    text = f"{faces} face{'' if faces == 1 else 's'}"
    if facts["genders"] or facts["age_buckets"]:
        text += f" [{_tally(facts['genders'], GENDERS)}; {_tally(facts['age_buckets'], BUCKET_LABELS)}]"
    return text


def from_text(text: str) -> dict | None:
    """The facts back from a text starting with `to_text`'s (anything may follow); None if it doesn't."""
    match = _TEXT.match(text)
    if not match:
        return None
    facts: dict = {"faces": int(match.group(1)), "genders": [], "age_buckets": []}
    if match.group(2):
        for part, name in zip(match.group(2).split(";"), ("genders", "age_buckets")):
            for item in filter(None, (i.strip() for i in part.split(","))):
                tally = _TALLY.match(item)
                if tally:
                    facts[name] += [tally.group(1)] * int(tally.group(2))
    return facts
