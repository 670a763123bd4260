"""The web page in headless Chromium (Debian's), driven by Playwright, against functions-framework."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FIXTURES
from servers import functions_framework

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def page_url():
    with functions_framework("http_analyze") as base:
        yield base + "/"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (`make chromium` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, page_url):
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_url)
    yield page, errors
    page.close()


def test_upload_photo_shows_annotated_image_and_table(page) -> None:
    page, errors = page
    page.set_input_files("#file", str(FIXTURES / "astronaut.png"))
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    rows = page.locator("#faces tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").nth(1).inner_text().startswith("Female")
    assert page.locator("#annotated").evaluate("img => img.complete && img.naturalWidth") == 512
    assert page.locator("#status").inner_text() == "1 face found."
    assert errors == []


def test_no_face_message(page) -> None:
    page, errors = page
    page.set_input_files("#file", str(FIXTURES / "coffee.png"))
    page.wait_for_selector("#result:not([hidden])", timeout=30_000)
    assert "No face found" in page.locator("#status").inner_text()
    assert errors == []


def test_text_file_gives_a_readable_error(page, tmp_path) -> None:
    page, _ = page
    note = tmp_path / "notes.txt"
    note.write_text("<b>not</b> a photo")
    page.set_input_files("#file", str(note))
    page.wait_for_selector("#status.error", timeout=30_000)
    message = page.locator("#status").inner_text()
    assert message.startswith("Sorry, that didn't work:")
    assert "<b>" not in page.locator("#status").inner_html()
    assert page.locator("#result").is_hidden()
