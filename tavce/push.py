"""Publish a tavce weights folder to a Hugging Face Hub repository.

The folder must be a tavce folder (``pipeline_config.json`` + components, as
written by ``tavce convert`` or ``pipe.save_pretrained``); a model card
(``README.md``) naming the sources and licences is written into it first when it
has none. Upload goes through ``huggingface_hub.HfApi`` (``create_repo``,
``create_branch``, ``upload_folder``); nothing else in tavce writes to the Hub.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tavce.components import read_pipeline_config
from tavce.errors import InvalidArgumentError, OutputError, WeightsNotFoundError
from tavce.model_card import MODEL_CARD_NAME, model_card

__all__ = ["push_to_hub", "write_model_card"]

logger = logging.getLogger(__name__)

DEFAULT_COMMIT_MESSAGE = "Upload tavce weights"


def write_model_card(folder: str | Path, *, repo_id: str | None = None, overwrite: bool = False) -> Path:
    """Write the model card ``README.md`` of a tavce folder (kept as is when present, unless ``overwrite``)."""
    folder = Path(folder)
    path = folder / MODEL_CARD_NAME
    if path.exists() and not overwrite:
        logger.info("%s: keeping the existing model card", path)
        return path
    try:
        path.write_text(model_card(read_pipeline_config(folder), repo_id=repo_id))
    except OSError as error:
        raise OutputError(
            f"{path}: cannot write the model card ({error.strerror}); check the folder's permissions"
        ) from error
    return path


def push_to_hub(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    token: str | None = None,
    overwrite_model_card: bool = False,
) -> str:
    """Upload ``folder`` to the model repository ``repo_id`` (created when missing).

    Args:
        folder: a tavce weights folder.
        repo_id: ``"user/name"`` or ``"org/name"``.
        private: create the repository private (an existing repository keeps its visibility).
        revision: branch to upload to (created from main when missing; default: main).
        commit_message: message of the upload commit.
        token: Hub token with write access (default: the logged-in token, ``hf auth login``).
        overwrite_model_card: regenerate ``README.md`` even when the folder has one.

    Returns:
        The URL of the upload commit.

    Raises:
        WeightsNotFoundError: ``folder`` is not a tavce folder.
        InvalidArgumentError: ``repo_id`` is not of the form ``owner/name``.
        OutputError: the Hub refused the upload (message from the Hub and the likely fix).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsNotFoundError(f"{folder}: folder not found; pass a folder written by `tavce convert`")
    read_pipeline_config(folder)  # refuses anything that is not a tavce folder
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise InvalidArgumentError(f"repo_id={repo_id!r}: expected owner/name, e.g. my-user/tavce-weights")
    write_model_card(folder, repo_id=repo_id, overwrite=overwrite_model_card)

    from huggingface_hub import HfApi
    from huggingface_hub.utils import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            revision=revision,
            commit_message=commit_message,
            ignore_patterns=[".*", "*/.*"],  # caches and temporary files, e.g. .cache/ from `hf download`
        )
    except HfHubHTTPError as error:
        raise OutputError(
            f"{repo_id}: upload refused by the Hub ({error}). Log in with `hf auth login` using a token with write "
            "access (or pass --token), and check that you may write to this owner"
        ) from error
    url = str(getattr(commit, "commit_url", commit))
    logger.info("uploaded %s to %s (%s)", folder, repo_id, url)
    return url
