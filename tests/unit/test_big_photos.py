"""Phone-size photos: groups of small faces, 48 and 108 MP JPEGs, EXIF rotation, AVIF/TIFF/GIF/HEIC.

The big JPEGs are generated here, once per session (never committed): faces from the fixture
photos pasted onto scikit-image's face-free coffee.png, upscaled.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from crafted import with_exif_orientation
from helpers import fixture_image, jpeg, png_header_only

from evaluation.group_recall import Pasted, background, match, paste_canvas
from handler.detection import BAND_OVERLAP, BAND_PIXELS, Detection, band_spans, finer_side, merge
from handler.errors import PayloadTooLarge, RequestError, UnsupportedMediaType
from handler.imaging import load
from handler.service import DEFAULT_OPTIONS, analyze_bytes, parse_options

ROOT = Path(__file__).resolve().parents[2]
# Square crops around the fixture faces (astronaut: a woman, camera: a man).
FACES = [(fixture_image("astronaut.png")[37:197, 146:306], "astronaut", "female"),
         (fixture_image("camera.png")[101:211, 172:282], "camera", "male")]


def group(width: int, height: int, size: int, count: int) -> tuple[np.ndarray, list[Pasted]]:
    faces = [FACES[i % 2] for i in range(count)]
    return paste_canvas(background(width, height), faces, size, np.random.default_rng(1))


@pytest.fixture(scope="session")
def group_12mp() -> tuple[np.ndarray, list[Pasted]]:
    """24 faces of 250 px (squares; the faces inside are ~150 px) in a 4000x3000 photo."""
    return group(4000, 3000, 250, 24)


@pytest.fixture(scope="session")
def big_jpegs(tmp_path_factory: pytest.TempPathFactory, group_12mp) -> dict[str, Path]:
    """The 12 MP group upscaled to 48 MP (stored turned, EXIF orientation 6) and to 108 MP."""
    canvas, _ = group_12mp
    folder = tmp_path_factory.mktemp("big")
    paths = {"48": folder / "48mp.jpg", "108": folder / "108mp.jpg"}
    big = cv2.resize(canvas, (8000, 6000), interpolation=cv2.INTER_LINEAR)
    paths["48"].write_bytes(with_exif_orientation(jpeg(cv2.rotate(big, cv2.ROTATE_90_COUNTERCLOCKWISE), 80), 6))
    del big
    paths["108"].write_bytes(jpeg(cv2.resize(canvas, (12000, 9000), interpolation=cv2.INTER_LINEAR), 70))
    return paths


def found(truth: list[Pasted], result: dict, scale: float = 1.0) -> int:
    scaled = [dataclasses.replace(t, x=round(t.x * scale), y=round(t.y * scale), size=round(t.size * scale))
              for t in truth]
    hits, false_positives = match(scaled, result["faces"])
    assert false_positives == 0
    return len(hits)


def options(**changes) -> object:
    return dataclasses.replace(DEFAULT_OPTIONS, max_faces=100, **changes)


# ------------------------------------------------------------------------ detection geometry (pure)

@pytest.mark.parametrize("size", [(1, 1), (640, 480), (2048, 1075), (2048, 1536), (8000, 1), (1, 8000),
                                  (4000, 3000)])
def test_bands_cover_with_overlap_and_bound_memory(size: tuple[int, int]) -> None:
    width, height = size
    spans = band_spans(width, height)
    assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] == height
    assert len(spans) == 1 or all(rows * width <= BAND_PIXELS * 1.01 for _, rows in spans)
    for (a, sa), (b, _) in itertools.pairwise(spans):
        assert a + sa - b >= BAND_OVERLAP  # a face up to BAND_OVERLAP px is whole in one band


def test_finer_pass_per_detail() -> None:
    assert finer_side(640, 480, "full", 2048) is None  # a small photo: the coarse pass sees everything
    assert finer_side(1280, 960, "auto", 2048) == 1280  # 1 MP: only when the coarse pass finds small faces
    assert finer_side(1280, 960, "full", 2048) == 1280
    assert finer_side(4000, 3000, "auto", 2048) == 2000
    assert finer_side(4000, 3000, "full", 2048) == 2048
    assert finer_side(4000, 3000, "fast", 2048) is None


def test_merge_keeps_the_most_confident_of_overlapping_or_nested_boxes() -> None:
    boxes = [Detection(0, 0, 100, 100, 0.9), Detection(5, 5, 105, 105, 0.95), Detection(20, 20, 60, 60, 0.8),
             Detection(300, 300, 350, 350, 0.7)]
    assert merge(boxes) == [(5, 5, 105, 105, 0.95, None), (300, 300, 350, 350, 0.7, None)]


# ------------------------------------------------------------------------ groups

def test_exif_rotated_12mp_group_found_by_default_boxes_upright(group_12mp) -> None:
    canvas, truth = group_12mp
    stored = with_exif_orientation(jpeg(cv2.rotate(canvas, cv2.ROTATE_90_COUNTERCLOCKWISE)), 6)
    result = analyze_bytes(stored, options(annotate=False)).result
    assert result["image"] == {"width": 4000, "height": 3000, "analysis_scale": 1.0}
    assert found(truth, result) >= 23
    genders = {f["gender"]["value"] for f in result["faces"] if f["analyzed"]}
    assert {"female", "male"} <= genders
    # The fast option trades recall for speed: the 640 px pass alone sees these 150 px faces at ~24 px.
    assert 0 < found(truth, analyze_bytes(jpeg(canvas), options(annotate=False, detail="fast")).result) < 23


def test_60px_faces_in_a_1mp_photo() -> None:
    canvas, truth = group(1280, 960, 60, 40)
    assert found(truth, analyze_bytes(jpeg(canvas), options(annotate=False)).result) >= 36


def test_detail_option_is_validated() -> None:
    assert parse_options({"detail": "full"}).detail == "full"
    with pytest.raises(RequestError) as err:
        parse_options({"detail": "max"})
    assert err.value.code == "invalid_options"


# ------------------------------------------------------------------------ big JPEGs, EXIF

def test_48mp_rotated_jpeg_is_decoded_reduced(group_12mp, big_jpegs) -> None:
    _, truth = group_12mp
    outcome = analyze_bytes(big_jpegs["48"].read_bytes(), options(), max_bytes=10**9)
    result = outcome.result
    assert result["image"] == {"width": 8000, "height": 6000, "analysis_scale": 0.5}  # 12 MP working image
    assert found(truth, result, scale=2) >= 23  # boxes upright, in the original's pixels
    annotated = cv2.imdecode(np.frombuffer(outcome.annotated_jpeg, np.uint8), cv2.IMREAD_COLOR)
    # ANNOTATE_MAX_SIDE wide; the photo is the top 1536 rows, a crowd's legend band may follow below it
    assert annotated.shape[1] == 2048 and annotated.shape[0] >= 1536
    assert outcome.annotated_scale == pytest.approx(2048 / 8000, abs=1e-4)


def test_108mp_jpeg_accepted_with_bounded_memory(big_jpegs) -> None:
    """In a fresh process, analysing the 108 MP JPEG raises peak RSS by under 400 MB."""
    code = ("import sys, json; import handler; from handler.service import analyze_bytes; "
            "rss = lambda: int([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]); "
            "data = open(sys.argv[1], 'rb').read(); before = rss(); "
            "r = analyze_bytes(data, max_bytes=10**9).result; "
            "print(json.dumps([(rss() - before) / 1024, r['image'], r['faces_detected']]))")
    proc = subprocess.run([sys.executable, "-c", code, str(big_jpegs["108"])], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    growth_mb, image, faces = json.loads(proc.stdout.strip().splitlines()[-1])
    assert image == {"width": 12000, "height": 9000, "analysis_scale": 0.5}  # 27 MP working image
    assert faces >= 23 and growth_mb < 400


def test_reduced_decode_keeps_exif_orientation() -> None:
    upright = np.zeros((600, 800, 3), np.uint8)
    upright[:200, :100] = 255  # a white block top-left, upright
    stored = with_exif_orientation(jpeg(cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)), 6)
    decoded = load(stored, max_bytes=10**7, max_pixels=120_000)  # forces 1/2
    assert (decoded.width, decoded.height, decoded.scale) == (800, 600, 0.5)
    ys, xs = np.nonzero(decoded.image[:, :, 0] > 128)
    assert xs.max() < 55 and ys.max() < 105


def test_jpeg_too_big_even_at_one_eighth_is_refused() -> None:
    with pytest.raises(PayloadTooLarge) as err:
        load(jpeg(np.zeros((800, 800, 3), np.uint8)), max_bytes=10**7, max_pixels=9_999)
    assert err.value.code == "too_many_pixels"


# ------------------------------------------------------------------------ formats

@pytest.mark.parametrize("ext", [".avif", ".tiff", ".gif"])
def test_avif_tiff_gif_analysed(ext: str) -> None:
    data = cv2.imencode(ext, fixture_image("astronaut.png"))[1].tobytes()
    (face,) = analyze_bytes(data, options(annotate=False)).result["faces"]
    assert face["gender"]["value"] == "female"


def test_heic_gets_a_415_saying_how_to_convert() -> None:
    with pytest.raises(UnsupportedMediaType, match="JPEG") as err:
        analyze_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    assert err.value.status == 415 and "Most Compatible" in str(err.value)


def _declaring(ext: str, width: int, height: int) -> bytes:
    """A small real file of `ext` whose header is edited to declare width x height: a bomb."""
    data = bytearray(cv2.imencode(ext, np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    if ext == ".gif":
        data[6:10] = width.to_bytes(2, "little") + height.to_bytes(2, "little")
    elif ext == ".avif":
        pos = data.find(b"ispe")
        data[pos + 8:pos + 16] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    else:  # TIFF, little-endian: ImageWidth (256) and ImageLength (257) in the first IFD
        ifd = int.from_bytes(data[4:8], "little")
        for i in range(int.from_bytes(data[ifd:ifd + 2], "little")):
            entry = ifd + 2 + 12 * i
            tag, kind = int.from_bytes(data[entry:entry + 2], "little"), int.from_bytes(data[entry + 2:entry + 4],
                                                                                         "little")
            if tag in (256, 257):
                value = (width if tag == 256 else height).to_bytes(4, "little")
                data[entry + 2:entry + 4] = (4).to_bytes(2, "little")  # LONG, whatever it was
                data[entry + 8:entry + 12] = value
                assert kind in (3, 4)
    return bytes(data)


@pytest.mark.parametrize("data", [_declaring(".gif", 40000, 40000), _declaring(".avif", 40000, 40000),
                                  _declaring(".tiff", 40000, 40000), png_header_only(40000, 40000)],
                         ids=["gif", "avif", "tiff", "png"])
def test_bombs_in_every_format_refused_from_the_header(data: bytes) -> None:
    with pytest.raises(PayloadTooLarge) as err:
        analyze_bytes(data)
    assert err.value.code == "too_many_pixels"
