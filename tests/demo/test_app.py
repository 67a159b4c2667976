"""The page's form covers every generation option; build_app and ``tavce demo`` refuse bad settings clearly."""

from __future__ import annotations

import contextvars
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tavce.cli import main
from tavce.demo.form import FORM_FIELDS, MODE_CHOICES, NOT_OFFERED, SECTIONS
from tavce.errors import FaceNotDetectedError, InvalidArgumentError
from tavce.options import GenerationOptions
from tavce.types import CROP_MODES


def test_every_generation_option_is_on_the_page_or_left_off_with_a_reason() -> None:
    offered = [field.name for field in FORM_FIELDS]
    assert len(offered) == len(set(offered)) and not set(offered) & set(NOT_OFFERED)
    assert set(offered) | set(NOT_OFFERED) == set(GenerationOptions.field_names()), (
        "a GenerationOptions field is neither on the page nor in NOT_OFFERED: add a FormField in tavce/demo/form.py"
    )
    assert {field.section for field in FORM_FIELDS} <= set(SECTIONS)
    assert tuple(MODE_CHOICES) == CROP_MODES


@pytest.fixture(scope="module")
def gradio():
    return pytest.importorskip("gradio", reason="the web app needs gradio (pip install 'tavce[demo]')")


@pytest.fixture(scope="module")
def pipe(tiny_weights: Path):
    from tavce import TalkingHeadPipeline

    return TalkingHeadPipeline.from_pretrained(tiny_weights)


def test_the_page_has_its_element_ids_and_default_form_values_are_valid(gradio, pipe) -> None:
    from tavce.demo import build_app
    from tavce.demo.app import ELEMENT_IDS

    app = build_app(pipe, concurrency=2, max_audio_seconds=30)
    components = {block.elem_id: block for block in app.blocks.values() if getattr(block, "elem_id", None)}
    assert set(ELEMENT_IDS) <= set(components)
    assert isinstance(components["result"], gradio.Video) and isinstance(components["portrait"], gradio.Image)
    labels = [block.label for block in app.blocks.values() if getattr(block, "label", None)]
    assert "Crop mode" in labels and "Head-motion style" in labels
    assert app._queue.default_concurrency_limit == 2
    assert app.delete_cache[1] == 3600
    mode = next(block for block in app.blocks.values() if getattr(block, "label", None) == "Crop mode")
    assert [value for _, value in mode.choices] == list(CROP_MODES)


def test_the_form_starts_at_the_options_defaults(gradio) -> None:
    from tavce.demo.form import build_form

    with gradio.Blocks():
        widgets = build_form(gradio)
    assert list(widgets) == [field.name for section in SECTIONS for field in FORM_FIELDS if field.section == section]
    values = {name: widget.value for name, widget in widgets.items()}
    assert GenerationOptions.from_mapping(values, where="the form") == GenerationOptions()


def test_build_app_refuses_unknown_limits_and_bad_concurrency(gradio, pipe) -> None:
    from tavce.demo import build_app

    with pytest.raises(InvalidArgumentError, match=r"unknown limits \['max_seconds'\]"):
        build_app(pipe, max_seconds=3)
    with pytest.raises(InvalidArgumentError, match="concurrency=0"):
        build_app(pipe, concurrency=0)
    with pytest.raises(InvalidArgumentError, match="max_image_pixels=-1"):
        build_app(pipe, max_image_pixels=-1)
    with pytest.raises(InvalidArgumentError, match="workers=4: must be a concurrent.futures executor"):
        build_app(pipe, workers=4)


def test_demo_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--weights", "--device", "--dtype", "--host", "--port", "--share", "--auth", "--concurrency",
                   "--max-audio-seconds", "--max-image-pixels", "--max-upload-mb", "--retention-minutes"):
        assert re.search(rf"{option}\b[^\n]*\n?\s+\S", text), option
    assert "127.0.0.1" in text


def test_demo_without_gradio_names_the_extra_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio now raises ImportError
    assert main(["demo", "--weights", "nowhere"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'tavce[demo]'" in lines[0]


def test_demo_refuses_bad_settings_before_loading_weights(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "no-weights")  # loading would fail differently: the settings are checked first
    assert main(["demo", "--weights", missing, "--auth", "nopassword"]) == 2
    assert "USER:PASS" in capsys.readouterr().err
    assert main(["demo", "--weights", missing, "--concurrency", "0"]) == 2
    assert "concurrency=0" in capsys.readouterr().err
    assert main(["demo", "--weights", missing, "--max-audio-seconds", "0"]) == 2
    assert "max_audio_seconds=0" in capsys.readouterr().err


def test_demo_loads_the_weights_and_enhancer_as_generate_does_and_launches_on_localhost(gradio, pipe, monkeypatch, tmp_path) -> None:
    from tavce import TalkingHeadPipeline

    loaded: dict = {}
    launched: dict = {}

    def from_pretrained(cls, weights=None, **kwargs):
        loaded.update(kwargs, weights=weights)
        return pipe

    monkeypatch.setattr(TalkingHeadPipeline, "from_pretrained", classmethod(from_pretrained))
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **kwargs: launched.update(kwargs))
    monkeypatch.setattr("tavce.commands.demo._stop_on_sigterm", lambda: None)
    arguments = ["demo", "--weights", "w", "--revision", "v2", "--cache-dir", str(tmp_path), "--offline", "--size",
                 "512", "--tavce-correlation", "c.pth", "--tavce-facerender", "f.pth", "--dtype", "float32",
                 "--enhancer", "gfpgan", "--enhancer-weights", "gfpgan-files", "--enhancer-upscale", "1"]
    assert main(arguments) == 0
    assert loaded == {
        "weights": "w", "revision": "v2", "cache_dir": str(tmp_path), "local_files_only": True, "size": 512,
        "tavce_correlation": "c.pth", "tavce_facerender": "f.pth", "device": None, "dtype": "float32",
        "enhancer": "gfpgan", "enhancer_weights": "gfpgan-files", "enhancer_upscale": 1,
    }
    assert launched["server_name"] == "127.0.0.1" and launched["server_port"] == 7860


def test_the_space_app_of_the_docs_builds_the_page_and_launches_it(gradio, pipe, monkeypatch) -> None:
    from tavce import TalkingHeadPipeline

    docs = (Path(__file__).resolve().parents[2] / "docs" / "demo.md").read_text()
    app_py = re.search(r"and `app\.py`:\n\n(?:<!--.*?-->\n)?```python\n(.*?)```", docs, re.DOTALL).group(1)
    launched: dict = {}
    monkeypatch.setattr(TalkingHeadPipeline, "from_pretrained", classmethod(lambda cls, *args, **kwargs: pipe))
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **kwargs: launched.update(kwargs, app=self))
    exec(compile(app_py, "app.py", "exec"), {})
    assert isinstance(launched.pop("app"), gradio.Blocks) and launched == {"max_file_size": "50mb"}


class _FailingPipeline:
    """Stands in for a pipeline: refuses like tavce (TavceError) or fails like a bug (anything else)."""

    size, has_cerl = 256, False

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, *args, **kwargs):
        raise self.error


def test_the_page_shows_tavce_messages_and_hides_tracebacks_of_bugs(gradio) -> None:
    from tavce.demo import build_app

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "demo"
    photo, speech = fixtures / "portrait.jpg", fixtures / "speech.wav"
    for error, shown in [
        (FaceNotDetectedError("no face found in the photo."), r"^no face found in the photo\. On this page: .*Face box"),
        (RuntimeError("CUDA error: an illegal memory access"), r"^internal error \(RuntimeError\); the server log"),
    ]:
        app = build_app(_FailingPipeline(error))
        (generate,) = [function.fn for function in app.fns.values() if function.name == "generate_video"]
        with pytest.raises(gradio.Error) as raised:
            generate(str(photo), str(speech), *[None] * len(FORM_FIELDS), progress=lambda *args, **kwargs: None)
        assert re.search(shown, raised.value.message) and "Traceback" not in raised.value.message


_REQUEST_MARK: contextvars.ContextVar[str] = contextvars.ContextVar("request_mark")


class _RecordingPipeline(_FailingPipeline):
    """Notes the thread it is called on and what the caller's context holds, then refuses the request."""

    def __init__(self) -> None:
        super().__init__(FaceNotDetectedError("no face found in the photo."))
        self.calls: list[tuple[int, str, str | None]] = []

    def __call__(self, *args, **kwargs):
        thread = threading.current_thread()
        self.calls.append((thread.ident, thread.name, _REQUEST_MARK.get(None)))
        return super().__call__(*args, **kwargs)


def test_tavce_demo_loads_and_serves_requests_on_one_worker_thread_in_the_callers_context(gradio, monkeypatch) -> None:
    # One thread for every PyTorch call of the server (loading included): on a CPU, rendering on a
    # thread other than the one that loaded was 1.47 against 1.27 s per frame (OpenMP teams): docs/performance.md.
    from tavce import TalkingHeadPipeline

    stub, loaded_on, launched = _RecordingPipeline(), [], {}

    def from_pretrained(cls, *args, **kwargs):
        loaded_on.append(threading.current_thread().ident)
        return stub

    monkeypatch.setattr(TalkingHeadPipeline, "from_pretrained", classmethod(from_pretrained))
    monkeypatch.setattr(gradio.Blocks, "launch", lambda self, **kwargs: launched.update(app=self))
    monkeypatch.setattr("tavce.commands.demo._stop_on_sigterm", lambda: None)
    assert main(["demo", "--weights", "w"]) == 0
    (generate,) = [function.fn for function in launched["app"].fns.values() if function.name == "generate_video"]
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "demo"
    for mark in ("first visitor", "second visitor"):
        token = _REQUEST_MARK.set(mark)  # stands for Gradio's per-request context (gr.Progress reads it)
        try:
            with pytest.raises(gradio.Error, match="no face found"):
                generate(str(fixtures / "portrait.jpg"), str(fixtures / "speech.wav"), *[None] * len(FORM_FIELDS),
                         progress=lambda *args, **kwargs: None)
        finally:
            _REQUEST_MARK.reset(token)
    assert loaded_on[0] != threading.main_thread().ident
    expected = [(loaded_on[0], "first visitor"), (loaded_on[0], "second visitor")]
    assert [(ident, mark) for ident, _, mark in stub.calls] == expected
    assert stub.calls[0][1].startswith("tavce-demo")


_SLOW_LOADING_DEMO = """
import sys, time
from tavce import TalkingHeadPipeline
from tavce.cli import main

def from_pretrained(cls, *args, **kwargs):
    print("loading", flush=True)
    time.sleep(120)  # a first download from the Hub

TalkingHeadPipeline.from_pretrained = classmethod(from_pretrained)
sys.exit(main(["demo", "--weights", "w"]))
"""


def test_ctrl_c_while_tavce_demo_loads_ends_it_at_once(gradio) -> None:
    # The weights load on a worker thread; without the explicit exit the interpreter would wait for it.
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_LOADING_DEMO], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "loading"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and time.monotonic() - started < 60
    assert "interrupted while loading the weights" in err and "Traceback" not in err
