"""tavce push and the model card: HfApi calls are intercepted, nothing reaches the network."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tavce.cli import main
from tavce.components import PIPELINE_CONFIG_NAME
from tavce.errors import InvalidArgumentError, OutputError, WeightsNotFoundError
from tavce.model_card import model_card
from tavce.push import push_to_hub

PIPELINE_CONFIG = {
    "library": "tavce",
    "version": "0.1.0",
    "components": {"renderer": "tavce.models.renderer.renderer:CERLRenderer"},
    "preprocessing": {"sample_rate": 16000},
    "provenance": {
        "source": "vinthony/SadTalker-V002rc",
        "revision": "v0.0.2",
        "files": ["SadTalker_V0.0.2_256.safetensors", "mapping_00229-model.pth.tar"],
        "size": 256,
        "cerl": False,
    },
}


@pytest.fixture
def tavce_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "weights"
    (folder / "renderer").mkdir(parents=True)
    (folder / "renderer" / "model.safetensors").write_bytes(b"weights")
    (folder / PIPELINE_CONFIG_NAME).write_text(json.dumps(PIPELINE_CONFIG))
    return folder


class _RecordingApi:
    """Stands in for huggingface_hub.HfApi; records every call."""

    calls: list[tuple[str, tuple, dict]] = []

    def __init__(self, token=None) -> None:
        self.calls.append(("init", (), {"token": token}))

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))

    def create_branch(self, *args, **kwargs):
        self.calls.append(("create_branch", args, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        folder = Path(kwargs["folder_path"])
        uploaded = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))
        self.calls.append(("uploaded_files", tuple(uploaded), {}))

        class Commit:
            commit_url = f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"

        return Commit()


@pytest.fixture
def recording_api(monkeypatch: pytest.MonkeyPatch) -> type[_RecordingApi]:
    import huggingface_hub

    _RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", _RecordingApi)
    return _RecordingApi


def test_model_card_names_sources_and_licences() -> None:
    card = model_card(PIPELINE_CONFIG, repo_id="me/tavce-256")
    assert card.startswith("---\nlibrary_name: tavce\n")
    for needle in (
        "Apache-2.0",
        "TAVCE",
        "insightface",
        "non-commercial",
        "iBUG 300-W",
        "vinthony/SadTalker-V002rc` at revision `v0.0.2`",
        "`SadTalker_V0.0.2_256.safetensors`",
        "CERL (TAVCE audio-relationship fusion): off",
        'TalkingHeadPipeline.from_pretrained("me/tavce-256")',
        "| `renderer` | `tavce.models.renderer.renderer:CERLRenderer` |",
    ):
        assert needle in card, needle
    assert "- tavce" not in card.split("---")[1]  # no TAVCE tag without TAVCE weights
    with_cerl = model_card(PIPELINE_CONFIG | {"provenance": {"cerl": True}})
    assert "CERL (TAVCE audio-relationship fusion): on" in with_cerl and "- tavce\n" in with_cerl


def test_push_creates_repo_branch_and_uploads_with_model_card(tavce_folder: Path, recording_api) -> None:
    url = push_to_hub(
        tavce_folder, "me/tavce-256", private=True, revision="exp", commit_message="first", token="hf_secret"
    )
    assert url == "https://huggingface.co/me/tavce-256/commit/abc"
    calls = {name: (args, kwargs) for name, args, kwargs in recording_api.calls}
    assert calls["init"][1] == {"token": "hf_secret"}
    assert calls["create_repo"] == (("me/tavce-256",), {"repo_type": "model", "private": True, "exist_ok": True})
    assert calls["create_branch"][1] | {"repo_id": calls["create_branch"][0][0]} == {
        "repo_id": "me/tavce-256",
        "branch": "exp",
        "repo_type": "model",
        "exist_ok": True,
    }
    upload = calls["upload_folder"][1]
    assert (upload["repo_id"], upload["revision"], upload["commit_message"]) == ("me/tavce-256", "exp", "first")
    assert upload["folder_path"] == str(tavce_folder)
    assert "README.md" in calls["uploaded_files"][0]
    assert "iBUG 300-W" in (tavce_folder / "README.md").read_text()


def test_push_keeps_an_existing_model_card_unless_asked(tavce_folder: Path, recording_api) -> None:
    (tavce_folder / "README.md").write_text("my own card")
    push_to_hub(tavce_folder, "me/tavce")
    assert (tavce_folder / "README.md").read_text() == "my own card"
    assert not any(name == "create_branch" for name, _, _ in recording_api.calls)  # main: no branch created
    push_to_hub(tavce_folder, "me/tavce", overwrite_model_card=True)
    assert "Apache-2.0" in (tavce_folder / "README.md").read_text()


def test_push_refuses_bad_inputs_before_any_hub_call(tmp_path: Path, tavce_folder: Path, recording_api) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(WeightsNotFoundError, match="not a tavce weights folder"):
        push_to_hub(tmp_path / "plain", "me/tavce")
    with pytest.raises(WeightsNotFoundError, match="folder not found"):
        push_to_hub(tmp_path / "absent", "me/tavce")
    with pytest.raises(InvalidArgumentError, match="owner/name"):
        push_to_hub(tavce_folder, "just-a-name")
    assert recording_api.calls == []


def test_hub_refusal_becomes_output_error(tavce_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub.utils import HfHubHTTPError

    class Refusing(_RecordingApi):
        def create_repo(self, *args, **kwargs):
            response = SimpleNamespace(headers={}, request=None, status_code=403)  # what the error reads
            raise HfHubHTTPError("403 Forbidden: no rights on this namespace", response=response)

    monkeypatch.setattr(huggingface_hub, "HfApi", Refusing)
    with pytest.raises(OutputError, match="me/tavce: upload refused by the Hub.*403.*hf auth login"):
        push_to_hub(tavce_folder, "me/tavce")


def test_push_command_line(tavce_folder: Path, recording_api, capsys: pytest.CaptureFixture) -> None:
    status = main(["push", str(tavce_folder), "--repo-id", "me/tavce", "--branch", "dev", "--private"])
    assert status == 0
    assert capsys.readouterr().out.strip() == "https://huggingface.co/me/tavce/commit/abc"
    upload = next(kwargs for name, _, kwargs in recording_api.calls if name == "upload_folder")
    assert upload["revision"] == "dev" and upload["commit_message"] == "Upload tavce weights"
    assert main(["push", str(tavce_folder.parent), "--repo-id", "me/tavce"]) == 2  # not a tavce folder


@pytest.mark.parametrize("command", ["convert", "push"])
def test_help_explains_every_option(command: str, capsys: pytest.CaptureFixture) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    options = {
        "convert": ["--output", "--size", "--crop-modes-only", "--tavce-correlation", "--tavce-facerender",
                    "--revision", "--cache-dir", "--offline", "source"],
        "push": ["--repo-id", "--private", "--revision", "--branch", "--commit-message", "--token",
                 "--overwrite-model-card", "folder"],
    }[command]
    for option in options:
        assert option in text, option
    import argparse

    from tavce.cli import available_subcommands

    parser = argparse.ArgumentParser()
    next(s for s in available_subcommands() if s.name == command).add_arguments(parser)
    undocumented = [a.dest for a in parser._actions if not a.help]
    assert undocumented == []
