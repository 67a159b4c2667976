"""``tavce demo`` driven by a headless Chromium, as a visitor uses it: upload, Generate, download the video.

Needs gradio (``pip install 'tavce[demo]'``), Playwright (``pip install playwright``) and a
Chromium binary (Debian's ``chromium`` package; ``TAVCE_CHROMIUM`` names another); skipped with
the reason otherwise. Playwright's own browser download is not used. The first test writes the page's screenshot to docs/images/demo.png.
"""

from __future__ import annotations

import os
import re
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

pytest.importorskip("gradio", reason="the web app needs gradio: pip install 'tavce[demo]'")
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
    # A microphone that plays a beep, allowed without asking: the page records from it.
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]
RECORDING_SECONDS = 1.2
STARTUP_SECONDS = 180
STOP_SECONDS = 120
REQUEST_MILLISECONDS = 120_000


def _free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


class DemoServer:
    """``tavce demo`` on tiny weights, two requests at a time, on a free loopback port."""

    def __init__(self, weights: Path, folder: Path) -> None:
        self.results = folder / "gradio" / "tavce-demo"
        self.log_path = folder / "server.log"
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/"
        environment = {**os.environ, "GRADIO_TEMP_DIR": str(folder / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tavce", "demo", "--weights", str(weights), "--port", str(port),
                 "--device", "cpu", "--concurrency", "2"],
                stdout=log, stderr=subprocess.STDOUT, env=environment,
            )

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"tavce demo exited with status {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"tavce demo did not answer in {STARTUP_SECONDS} s:\n{self.log()}")
                time.sleep(0.5)

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; returns the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                # Gradio's shutdown and the interpreter's exit took 7-20 s on a host giving the process one core.
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tiny_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoServer]:
    running = DemoServer(tiny_weights, tmp_path_factory.mktemp("demo-server"))
    try:
        running.wait_until_serving()
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900},
        )
        context.grant_permissions(["microphone"])
        context.set_default_timeout(REQUEST_MILLISECONDS)
        yield context
        context.close()


def _open(browser, server: str):
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_selector("#generate")
    return page


def _request(page, portrait: Path, speech: Path | None, seed: str = "") -> None:
    """Upload (speech None: keep the clip already there), type the seed, press Generate."""
    page.locator("#portrait input[type=file]").set_input_files(str(portrait))
    if speech is not None:
        page.locator("#speech input[type=file]").set_input_files(str(speech))
    page.locator("#option-seed textarea, #option-seed input").first.fill(seed)
    page.click("#generate")


def _record_speech(page, folder: Path) -> Path:
    """Record from the (fake) microphone into ``#speech``; returns the recording as the server stored it."""
    page.locator("#speech button[aria-label='Record audio']").click()
    page.locator("#speech button", has_text=re.compile("record", re.IGNORECASE)).first.click()
    time.sleep(RECORDING_SECONDS)
    page.locator("#speech button", has_text=re.compile("stop", re.IGNORECASE)).first.click()
    stored = page.locator("#speech a[href*='/file=']").first
    stored.wait_for()
    path = folder / "recording.wav"
    path.write_bytes(page.request.get(stored.get_attribute("href")).body())
    return path


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


def test_two_visitors_at_once_both_get_their_videos_one_recording_with_the_microphone(
    browser, server, tmp_path
) -> None:
    uploading, recording = _open(browser, server), _open(browser, server)
    recorded = _record_speech(recording, tmp_path)
    _request(uploading, FIXTURES / "portrait.jpg", FIXTURES / "speech.wav", seed="1")
    _request(recording, FIXTURES / "portrait.jpg", None, seed="2")
    for number, (page, speech) in enumerate([(uploading, FIXTURES / "speech.wav"), (recording, recorded)]):
        folder = tmp_path / f"visitor-{number}"
        folder.mkdir()
        _check_video(_downloaded_video(page, folder), speech)
        page.close()


def test_results_are_deleted_when_the_server_stops(server: DemoServer) -> None:
    assert list(server.results.glob("*.mp4")), "the tests above left no result to delete"
    assert server.stop() == 0, server.log()
    assert list(server.results.glob("*.mp4")) == []
