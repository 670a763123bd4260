"""The web page in headless Chromium (Debian's), driven by Playwright, against functions-framework.

One browser and one server for the module. Screenshots at phone, tablet and desktop widths go to
build/screenshots/ for a person to look at.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from crafted import with_exif_orientation
from helpers import FIXTURES, fixture_image, jpeg, png, tiled
from servers import ROOT, functions_framework

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "build" / "screenshots"
WIDTHS = (375, 768, 1280)
UPLOAD_BYTES = 4 * 1024 * 1024  # the page's upload limit
# The page's main blocks, which must never overlap one another.
BLOCKS = ["header", "#drop", "#status-row", "#photo", "#faces"]


@pytest.fixture(scope="module")
def page_url():
    with functions_framework("http_analyze") as base:
        yield base + "/"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (`make chromium` installs it)")
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, page_url):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_url)
    yield page, errors
    page.close()


def upload(page, path: Path) -> str:
    """Pick a file as a person would and wait for the page's verdict; the status text.

    The page says "Reading NAME …" at once, so the wait below never sees the previous verdict.
    """
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => { const s = document.getElementById('status').textContent;"
                           " return s && !s.endsWith('…'); }", timeout=60_000)
    return page.locator("#status").inner_text()


def overlaps(a: dict, b: dict) -> bool:
    """Two bounding boxes share area (touching edges are fine)."""
    return (min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"]) > 0.5
            and min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"]) > 0.5)


def test_photo_gives_a_card_per_face_linked_to_its_box(page) -> None:
    page, errors = page
    assert page.locator("#camera").is_hidden()  # a desktop without touch: no camera button
    with page.expect_request("**/analyze*") as request:
        status = upload(page, FIXTURES / "astronaut.png")
    assert status == "1 face found."
    assert request.value.url.endswith("?annotate=false")  # the page draws the boxes itself
    card, box = page.locator(".card"), page.locator(".box")
    assert card.count() == 1 and box.count() == 1
    assert card.locator("h3").inner_text().endswith("Female, (25-32)")
    assert "sure" in card.locator("dd").first.inner_text()
    # The crop is cut from the photo: not blank.
    spread = card.locator("canvas.crop").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " return Math.max(...d.filter((_, i) => i % 4 === 0)) - Math.min(...d.filter((_, i) => i % 4 === 0)); }")
    assert spread > 100
    box.hover()
    assert "hot" in card.get_attribute("class")
    page.mouse.move(0, 0)
    assert "hot" not in card.get_attribute("class")
    # Keyboard: in reading order, the picker, the photo's save button, the card; focusing the card lights its box.
    for expected in ("choose", "save", "face-1"):
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == expected
    assert "hot" in box.get_attribute("class")
    # The annotated copy: the service's own JPEG, asked for only now.
    with page.expect_request("**/analyze*") as request, page.expect_download() as download:
        page.locator("#save").click()
    assert request.value.url.endswith("?annotate=true") and request.value.headers["accept"] == "image/jpeg"
    saved = cv2.imread(str(download.value.path()))
    cv2.imwrite(str(SCREENSHOTS / "saved-with-boxes.jpg"), saved)
    assert download.value.suggested_filename == "astronaut-faces.jpg" and saved.shape == (512, 512, 3)
    assert page.locator("#save-status").inner_text() == "Saved as astronaut-faces.jpg."
    assert errors == []


def service_jpeg(page_url: str, photo: bytes, content_type: str) -> bytes:
    """The annotated JPEG the service itself gives for `photo` (what the S3/GCS triggers and the CLI get too)."""
    request = urllib.request.Request(page_url + "analyze?annotate=true", data=photo, method="POST",
                                     headers={"Content-Type": content_type, "Accept": "image/jpeg"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read()


def test_crowd_numbers_clear_of_each_other_and_saved_copy_is_the_services(browser, page_url, tmp_path) -> None:
    """36 faces: on screen, at phone and desktop widths, no number covers another number or another face
    (a number with no room shows on hover or focus only); the saved copy is the service's own annotated
    JPEG, byte for byte, whose crowd rule tests/unit/test_annotate.py checks."""
    photo = tmp_path / "crowd.jpg"
    photo.write_bytes(jpeg(tiled(["astronaut.png"] * 36, cols=6, size=320)))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(page_url)
    assert upload(page, photo) == "36 faces found."
    rects = """() => Array.from(document.querySelectorAll('.box')).map(b => {
        const t = b.querySelector('.tag'), r = t.getBoundingClientRect(), q = b.getBoundingClientRect();
        return {box: {x: q.x, y: q.y, width: q.width, height: q.height}, shown: t.offsetParent !== null,
                tag: {x: r.x, y: r.y, width: r.width, height: r.height}, crowded: b.classList.contains('crowded')};
    })"""
    for width in (390, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)  # the ResizeObserver places the numbers again
        marks = page.evaluate(rects)
        frame = page.locator("#frame").bounding_box()
        shown = [m for m in marks if m["shown"]]
        assert len(marks) == 36 and all(m["shown"] != m["crowded"] for m in marks)
        assert len(shown) >= (36 if width == 1280 else 18), width  # room for every number on a desktop
        for i, m in enumerate(shown):
            t = m["tag"]
            assert frame["x"] - 0.5 <= t["x"] and t["x"] + t["width"] <= frame["x"] + frame["width"] + 0.5
            assert frame["y"] - 0.5 <= t["y"] and t["y"] + t["height"] <= frame["y"] + frame["height"] + 0.5
            assert not any(overlaps(t, n["tag"]) for n in shown[i + 1:]), (width, i)
            assert not any(overlaps(t, n["box"]) for n in marks if n is not m), (width, i)
        page.screenshot(path=str(SCREENSHOTS / f"crowd-{width}.png"))
    with page.expect_download() as download:
        page.locator("#save").click()
    saved = Path(download.value.path()).read_bytes()
    assert saved == service_jpeg(page_url, photo.read_bytes(), "image/jpeg")
    page.close()


def test_layout_at_phone_tablet_and_desktop_widths(page, four_faces_jpeg, tmp_path) -> None:
    page, errors = page
    photo = tmp_path / "four friends.jpg"
    photo.write_bytes(four_faces_jpeg)
    assert upload(page, photo) == "4 faces found."
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), width
        blocks = [page.locator(s).bounding_box() for s in BLOCKS]
        cards = [c.bounding_box() for c in page.locator(".card").all()]
        assert len(cards) == 4 and all(blocks)
        for group in (blocks, cards):
            for i, a in enumerate(group):
                assert a["x"] >= 0 and a["x"] + a["width"] <= width, (width, i, a)
                assert not any(overlaps(a, b) for b in group[i + 1:]), (width, i, a)
        frame = page.locator("#frame").bounding_box()
        for box in page.locator(".box").all():
            b = box.bounding_box()
            assert frame["x"] <= b["x"] and b["x"] + b["width"] <= frame["x"] + frame["width"] + 1
        page.locator(".card").nth(1).hover()  # shows the card-to-box link
        page.screenshot(path=str(SCREENSHOTS / f"page-{width}.png"), full_page=True)
    assert errors == []


def test_phones_get_a_camera_button(browser, page_url) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 800}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(page_url)
    assert page.locator("#camera").is_visible()
    assert page.locator("#camera-file").get_attribute("capture") == "user"
    assert page.locator("#file").get_attribute("accept") == "image/*"
    context.close()


def test_text_file_is_refused_in_the_browser_in_plain_words(page, tmp_path) -> None:
    page, _ = page
    sent: list[str] = []
    page.on("request", lambda r: "/analyze" in r.url and sent.append(r.url))
    note = tmp_path / "notes.txt"
    note.write_text("<b>not</b> a photo")
    assert upload(page, note) == "notes.txt is not a photo. Choose a JPEG, PNG, WebP or BMP photo."
    assert "<b>" not in page.locator("#status").inner_html()
    assert sent == [] and page.locator("#result").is_hidden() and page.locator("#retry").is_hidden()


def test_damaged_photo_gets_a_plain_sentence(page, tmp_path) -> None:
    page, _ = page
    broken = tmp_path / "holiday.jpg"
    broken.write_bytes(jpeg(fixture_image("camera.png"))[:3000])
    assert upload(page, broken).startswith("holiday.jpg could not be read as a photo: the file looks damaged")


def test_no_face_says_so(page) -> None:
    page, errors = page
    status = upload(page, FIXTURES / "coffee.png")
    assert status.startswith("No face found in coffee.png.")
    assert page.locator(".card").count() == 0 and page.locator("#faces").is_hidden()
    assert errors == []


def test_photo_dropped_on_the_page_is_analysed(page) -> None:
    page, _ = page
    tiny = base64.b64encode(png(np.full((64, 64, 3), 128, np.uint8))).decode()
    page.evaluate("""b64 => {
        const data = new DataTransfer();
        data.items.add(new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], "grey.png", {type: "image/png"}));
        document.body.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
    }""", tiny)
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('No face')", timeout=60_000)
    assert page.locator("#status").inner_text().endswith("The photo is only 64 × 64 pixels; a larger one may help.")


@pytest.mark.parametrize(("change", "why", "issue"), [
    (lambda image: cv2.GaussianBlur(image, (0, 0), 3), "too blurry", "The face is blurry."),
    (lambda image: cv2.resize(image, (160, 160), interpolation=cv2.INTER_AREA), "too small", "The face is small"),
])
def test_unclear_face_says_why(page, tmp_path, change, why, issue) -> None:
    page, _ = page
    photo = tmp_path / "unclear.png"
    cv2.imwrite(str(photo), change(fixture_image("astronaut.png")))
    assert upload(page, photo).startswith(f"1 face found, but it is {why} to tell age and gender.")
    assert issue in page.locator(".card").inner_text()


def test_new_result_fields_show_and_missing_ones_do_no_harm(page) -> None:
    """The real answer, rewritten as a newer service may send it: an age interval instead of a range,
    new quality codes; and without the fields the page can do without."""
    page, errors = page

    def newer(route) -> None:
        response = route.fetch()
        data = response.json()
        for name in ("timings_ms", "faces_analyzed", "cold_start"):
            data.pop(name)
        face = data["faces"][0]
        for name in ("rank", "detection_confidence", "sharpness", "score"):
            face.pop(name)
        face["age"].pop("range", None)  # gone since age.interval replaced it
        face["age"]["interval"] = {"low": 24, "high": 41, "coverage": 0.8}
        face["quality"] = {"ok": False, "issues": ["age_uncertain", "underexposed", "overexposed", "squinting"]}
        face["something_new"] = {"x": 1}
        route.fulfill(response=response, json=data)

    page.route("**/analyze*", newer)
    assert upload(page, FIXTURES / "astronaut.png") == "1 face found."
    text = page.locator(".card").inner_text()
    for words in ("between 24 and 41, 80\xa0% sure", "The age estimate is uncertain.", "The face is too dark.",
                  "The face is too bright.", "Squinting."):
        assert words in text
    assert errors == []


def test_large_photo_is_shrunk_in_the_browser(page, tmp_path) -> None:
    page, errors = page
    # An 8 MB phone-sized photo: the astronaut at 3200 px with sensor-like noise, which JPEG can't compress.
    big = cv2.resize(fixture_image("astronaut.png"), (3200, 3200), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).integers(-50, 51, (256, 256, 3), dtype=np.int16)
    photo = tmp_path / "phone.jpg"
    photo.write_bytes(jpeg(np.clip(big + np.tile(noise, (13, 13, 1))[:3200, :3200], 0, 255).astype(np.uint8), 95))
    assert photo.stat().st_size > 8_000_000
    assert upload(page, photo) == "1 face found."
    note = page.locator("#notes").inner_text()
    sent = re.search(r"so your browser shrank it to ([\d.]+) MB \((\d+) × (\d+)\) before sending it", note)
    assert sent, note
    assert float(sent[1]) * 1e6 <= UPLOAD_BYTES and int(sent[2]) == int(sent[3]) < 3200
    # This server has no UPLOAD_BUCKET: POST /uploads answered 501 (the browser logs it) and the page shrank instead.
    assert [e for e in errors if "501" not in e] == []


def test_gif_is_converted_in_the_browser(page, tmp_path) -> None:
    page, _ = page
    image = pytest.importorskip("PIL.Image")
    gif = tmp_path / "party.gif"
    image.open(FIXTURES / "astronaut.png").convert("P").save(gif)
    assert upload(page, gif) == "1 face found."
    assert "is a GIF image, so your browser converted it to a JPEG of" in page.locator("#notes").inner_text()


def test_heic_the_browser_cannot_read_goes_to_the_service_and_its_refusal_reads_plainly(page, tmp_path) -> None:
    page, _ = page
    heic = tmp_path / "IMG_0001.HEIC"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(2000))
    with page.expect_request("**/analyze*"):
        status = upload(page, heic)
    assert status.startswith("IMG_0001.HEIC is a HEIC photo that neither this browser nor the service can read.")
    assert "Most Compatible" in status


GATEWAY_AND_NETWORK = [
    (None, "Couldn't reach the service."),
    ({"status": 503, "body": "Service Unavailable"}, "The service is starting up or took too long"),
    ({"status": 429, "body": json.dumps({"message": "Too Many Requests"})}, "The service is busy right now."),
    ({"status": 500, "content_type": "application/json",
      "body": json.dumps({"error": {"code": "internal_error", "message": "internal error"}})},
     "Something went wrong on our side while analysing astronaut.png."),
]


def answer(reply: dict | None):
    """A route handler that gives `reply`, or fails the connection when it is None."""
    return lambda route: route.abort() if reply is None else route.fulfill(**reply)


def test_gateway_and_network_failures_read_plainly(page) -> None:
    """What API Gateway or the network can answer, which our server never does, simulated at the browser."""
    page, _ = page
    for reply, expected in GATEWAY_AND_NETWORK:
        page.route("**/analyze*", answer(reply))
        assert upload(page, FIXTURES / "astronaut.png").startswith(expected)
        assert page.locator("#retry").is_visible()  # these are worth another try
        page.unroute("**/analyze*")
    page.locator("#retry").click()  # and the retry works once the service is back
    page.wait_for_function("() => document.getElementById('status').textContent === '1 face found.'", timeout=60_000)


def test_save_that_fails_says_so_beside_the_button(page) -> None:
    """The annotated copy is a second request; when the service (simulated at the browser) can't give it,
    a sentence says so beside the button, the result stays, and the button works again."""
    page, _ = page
    assert upload(page, FIXTURES / "astronaut.png") == "1 face found."
    page.route("**/analyze?annotate=true", answer(GATEWAY_AND_NETWORK[1][0]))
    page.locator("#save").click()
    page.wait_for_function("() => document.getElementById('save-status').textContent.startsWith('The service')")
    assert page.locator("#save-status").inner_text().startswith("The service is starting up or took too long")
    assert page.locator("#status").inner_text() == "1 face found." and page.locator(".card").count() == 1
    page.unroute("**/analyze?annotate=true")
    with page.expect_download() as download:
        page.locator("#save").click()
    assert download.value.suggested_filename == "astronaut-faces.jpg"


def test_signed_in_deployment_takes_a_pasted_token(page) -> None:
    """ApiAuth=jwt: API Gateway's authorizer (simulated at the browser) lets a request through with a
    valid bearer token, to the real server, and answers 401 without one."""
    page, _ = page

    def authorizer(route) -> None:
        if route.request.headers.get("authorization") == "Bearer t0ken":
            route.continue_()
        else:
            route.fulfill(status=401, content_type="application/json", body='{"message":"Unauthorized"}')

    page.route("**/analyze*", authorizer)
    page.set_viewport_size({"width": 375, "height": 800})
    status = upload(page, FIXTURES / "astronaut.png")
    assert status.startswith("This service needs you to sign in: paste an access token")
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.get_by_label("Access token").fill("t0ken")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('status').textContent === '1 face found.'", timeout=60_000)
    assert page.locator("#auth").is_hidden()


def test_rotated_phone_photo_gets_its_box_on_the_face(page, tmp_path) -> None:
    """Stored sideways with an EXIF orientation: the browser shows it upright, the service answers upright."""
    page, _ = page
    photo = tmp_path / "rotated.jpg"
    sideways = cv2.rotate(fixture_image("astronaut.png"), cv2.ROTATE_90_CLOCKWISE)
    photo.write_bytes(with_exif_orientation(jpeg(sideways), 8))  # 8: turn 90 degrees anticlockwise to view
    assert upload(page, photo) == "1 face found."
    frame, box = page.locator("#frame").bounding_box(), page.locator(".box").bounding_box()
    assert frame["width"] == pytest.approx(frame["height"], abs=2)
    # The upright astronaut's face: x 180, y 58 of 512.
    assert (box["x"] - frame["x"]) / frame["width"] == pytest.approx(180 / 512, abs=0.04)
    assert (box["y"] - frame["y"]) / frame["height"] == pytest.approx(58 / 512, abs=0.04)


def test_accessibility_scan_finds_nothing_serious(page) -> None:
    if not AXE.is_file():
        pytest.skip("axe-core is not installed (`make axe` installs it)")
    page, _ = page
    page.add_script_tag(path=str(AXE))
    scan = "async () => (await axe.run()).violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))"
    found = page.evaluate(scan)
    upload(page, FIXTURES / "astronaut.png")  # the result: photo, boxes, cards
    found += page.evaluate(scan)
    page.route("**/analyze*", answer({"status": 401, "body": '{"message":"Unauthorized"}'}))
    upload(page, FIXTURES / "astronaut.png")  # an error, with the token form
    found += page.evaluate(scan)
    page.screenshot(path=str(SCREENSHOTS / "page-sign-in.png"))
    serious = [v for v in found if v["impact"] in ("serious", "critical")]
    assert serious == [], serious



# The input bucket's CORS rule (deploy.sh and template.yaml set one) played by the test: the emulator has none.
BUCKET_CORS = {"access-control-allow-origin": "*", "access-control-allow-methods": "PUT",
               "access-control-allow-headers": "content-type, x-goog-content-length-range"}


def bucket_with_cors(route) -> None:
    if route.request.method == "OPTIONS":
        return route.fulfill(status=204, headers=BUCKET_CORS)
    reply = route.fetch()
    route.fulfill(response=reply, headers={**reply.headers, **BUCKET_CORS})


def big_photo_at(browser, base: str, photo: Path, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    asked: list[str] = []
    page.on("request", lambda r: asked.append(f"{r.method} {r.url.split('?')[0]}"))
    page.route(re.compile(r"^http://127\.0\.0\.1:\d+/faceread-stack-in/.*"), bucket_with_cors)
    page.goto(base + "/")
    assert upload(page, photo) == "1 face found.", page.locator("#notes").inner_text()
    note = page.locator("#notes").inner_text()
    assert "so it was sent whole to the service's storage and analysed there" in note and "shrank" not in note
    assert any(a.startswith("POST ") and a.endswith("/uploads") for a in asked)
    assert any(a.startswith("PUT ") and "/faceread-stack-in/uploads/http/" in a for a in asked)
    assert not any(a.startswith("POST ") and "/analyze" in a for a in asked)  # never sent to /analyze
    assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    page.screenshot(path=str(SCREENSHOTS / f"page-upload-{width}.png"), full_page=True)
    assert errors == []
    page.close()


def test_big_phone_photo_goes_whole_through_the_upload_route(browser, tmp_path) -> None:
    """A JPEG over the request limit is not shrunk: the page asks POST /uploads, PUTs it to the bucket, polls
    GET /uploads/<id> and shows the stored result over the full photo (GCS emulator, Eventarc stand-in)."""
    from helpers import big_photo
    from upload_stack import gcs_upload_stack

    photo = tmp_path / "IMG_2041.jpg"
    photo.write_bytes(big_photo())
    with gcs_upload_stack(tmp_path) as base:
        for width in WIDTHS:
            big_photo_at(browser, base, photo, width)
