"""``tavce push FOLDER --repo-id OWNER/NAME``: publish a tavce weights folder on the Hugging Face Hub."""

from __future__ import annotations

import argparse

from tavce.cli import Subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="tavce weights folder (written by `tavce convert` or pipe.save_pretrained)")
    parser.add_argument(
        "--repo-id", required=True, help="destination model repository, OWNER/NAME (created if it does not exist)"
    )
    parser.add_argument(
        "--private", action="store_true", help="create the repository private (an existing one keeps its visibility)"
    )
    parser.add_argument(
        "--revision",
        "--branch",
        dest="revision",
        default=None,
        help="branch to upload to, created from main if missing (default: main)",
    )
    parser.add_argument(
        "--commit-message", default="Upload tavce weights", help="message of the upload commit (default: %(default)r)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help="Hub token with write access (default: the token saved by `hf auth login`, or HF_TOKEN)",
    )
    parser.add_argument(
        "--overwrite-model-card",
        action="store_true",
        help="regenerate README.md (sources and licences) even if the folder already has one",
    )


def run(arguments: argparse.Namespace) -> int:
    from tavce.push import push_to_hub

    url = push_to_hub(
        arguments.folder,
        arguments.repo_id,
        private=arguments.private,
        revision=arguments.revision,
        commit_message=arguments.commit_message,
        token=arguments.token,
        overwrite_model_card=arguments.overwrite_model_card,
    )
    print(url)
    return 0


SUBCOMMAND = Subcommand(
    name="push",
    help="upload a tavce weights folder (with a model card naming sources and licences) to the Hugging Face Hub",
    add_arguments=add_arguments,
    run=run,
)
