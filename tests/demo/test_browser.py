"""``tavce demo`` driven by a headless Chromium, as a visitor uses it: upload, Generate, download the video.

Needs Playwright (``pip install playwright``) and a Chromium binary (Debian's ``chromium`` package;
``TAVCE_CHROMIUM`` names another); skipped with the reason otherwise. Playwright's own browser
download is not used. The first test writes the page's screenshot to docs/images/demo.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from tavce.audio import load_audio
from tavce.types import SAMPLES_PER_FRAME
from tests.helpers import probe

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser test needs playwright: pip install playwright"
)
CHROMIUM = os.environ.get("TAVCE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("the browser test needs Chromium: apt-get install chromium (or set TAVCE_CHROMIUM)", allow_module_level=True)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "demo"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "demo.png"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
STARTUP_SECONDS = 180
REQUEST_MILLISECONDS = 120_000


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tavce demo`` on tiny weights, two requests at a time, on a free loopback port; yields its URL."""
    folder = tmp_path_factory.mktemp("demo-server")
    port = _free_port()
    environment = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "tavce", "demo", "--weights", str(tiny_weights), "--port", str(port),
         "--device", "cpu", "--concurrency", "2"],
        stdout=log, stderr=subprocess.STDOUT, env=environment,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"tavce demo exited with status {process.returncode}:\n{_read(folder / 'server.log')}")
            try:
                with urllib.request.urlopen(url, timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"tavce demo did not answer in {STARTUP_SECONDS} s:\n{_read(folder / 'server.log')}")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(REQUEST_MILLISECONDS)
        yield context
        context.close()


def _open(browser, server: str):
    page = browser.new_page()
    page.goto(server)
    page.wait_for_selector("#generate")
    return page


def _request(page, portrait: Path, speech: Path | None, seed: str = "") -> None:
    """Upload (speech None: keep the clip already there), type the seed, press Generate."""
    page.locator("#portrait input[type=file]").set_input_files(str(portrait))
    if speech is not None:
        page.locator("#speech input[type=file]").set_input_files(str(speech))
    page.locator("#option-seed textarea, #option-seed input").first.fill(seed)
    page.click("#generate")


def _downloaded_video(page, folder: Path) -> Path:
    """Waits for the result, then saves it through the player's download link."""
    page.wait_for_selector("#result video[src]")
    with page.expect_download() as download:
        page.locator("#result [data-testid=download-link]").click()
    path = folder / "downloaded.mp4"
    download.value.save_as(path)
    return path


def _check_video(video: Path, speech: Path) -> None:
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert frames == len(load_audio(speech).samples) // SAMPLES_PER_FRAME  # 25 fps: one frame per 640 samples
    assert "Audio: aac" in probe(video) and "Video: h264" in probe(video)


def test_a_visitor_uploads_a_portrait_and_speech_and_downloads_the_video(browser, server, tmp_path) -> None:
    page = _open(browser, server)
    speech = FIXTURES / "speech.wav"
    _request(page, FIXTURES / "portrait.jpg", speech, seed="7")
    video = _downloaded_video(page, tmp_path)
    _check_video(video, speech)
    assert page.locator("#seed textarea, #seed input").first.input_value() == "7"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.close()


def test_a_photo_without_a_face_shows_the_message_and_the_next_request_works(browser, server, tmp_path) -> None:
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 128, dtype=np.uint8)).save(blank)
    page = _open(browser, server)
    _request(page, blank, FIXTURES / "speech.wav")
    page.get_by_text("no face found in the 320x240 source image").first.wait_for()
    assert page.get_by_text("Traceback").count() == 0
    _request(page, FIXTURES / "portrait.jpg", None)
    _check_video(_downloaded_video(page, tmp_path), FIXTURES / "speech.wav")
    assert page.locator("#seed textarea, #seed input").first.input_value().isdigit()
    page.close()


def test_two_visitors_at_once_both_get_their_videos(browser, server, tmp_path) -> None:
    pages = [_open(browser, server) for _ in range(2)]
    for seed, page in enumerate(pages):
        _request(page, FIXTURES / "portrait.jpg", FIXTURES / "speech.wav", seed=str(seed))
    for number, page in enumerate(pages):
        folder = tmp_path / str(number)
        folder.mkdir()
        _check_video(_downloaded_video(page, folder), FIXTURES / "speech.wav")
        page.close()
