"""List prices and the dry run's estimate: wall clock and cost of a backfill, beside Rekognition."""

from __future__ import annotations

# A 640x480 one-face photo on Lambda at 2048 MB (README, "Backfill: measured, and 1 M images"): the
# analysis, 30 ms (`make bench`), times the flow's same-run overhead against local moto (1.96x,
# `make bench-backfill`), plus in-region S3 latency for HEAD, GET and two PUTs (~65 ms, estimated).
# Pass --ms-per-image for other photos: a 12 MP phone photo is ~480 ms.
DEFAULT_MS_PER_IMAGE = 125.0
LAMBDA_GB_SECOND = 0.0000166667  # x86, us-east-1 list price
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
BATCH_OPS_PER_JOB, BATCH_OPS_PER_OBJECT = 0.25, 1.00 / 1_000_000
S3_GET, S3_PUT = 0.0004 / 1000, 0.005 / 1000  # HEAD is priced as GET
REKOGNITION_PER_IMAGE = 1.00 / 1000  # DetectFaces, first million images a month


def estimate(count: int, total_bytes: int, ms_per_image: float, memory_mb: int, concurrency: int,
             batch_size: int) -> list[tuple[str, str]]:
    """Wall clock and list-price cost of analysing `count` objects, beside Rekognition DetectFaces."""
    seconds = count * ms_per_image / 1000
    gb_seconds = seconds * memory_mb / 1024
    compute = gb_seconds * LAMBDA_GB_SECOND
    s3 = count * (2 * S3_GET + 2 * S3_PUT)  # HEAD result + GET source, PUT image + PUT JSON
    batch_ops = BATCH_OPS_PER_JOB + count * (BATCH_OPS_PER_OBJECT + LAMBDA_PER_REQUEST)
    dmap = -(-count // batch_size) * LAMBDA_PER_REQUEST  # (+ Step Functions transitions, see README)
    return [
        ("objects", f"{count:,} ({total_bytes / 1e9:,.2f} GB)"),
        (f"ms per image (Lambda, {memory_mb} MB)", f"{ms_per_image:.0f}"),
        ("compute, serial", f"{seconds / 3600:,.1f} h"),
        (f"wall clock at {concurrency:,}-way", f"{seconds / concurrency / 60:,.1f} min"),
        (f"Lambda compute ({memory_mb} MB)", f"${compute:,.2f}"),
        ("S3 requests", f"${s3:,.2f}"),
        ("total, Batch Operations", f"${compute + s3 + batch_ops:,.2f}"),
        (f"total, Distributed Map ({batch_size}/batch)", f"${compute + s3 + dmap:,.2f} + transitions"),
        ("Rekognition DetectFaces, for comparison", f"${count * REKOGNITION_PER_IMAGE:,.2f}"),
    ]


def table(rows: list[tuple[str, str]]) -> str:
    """The estimate as aligned `name  value` lines."""
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
