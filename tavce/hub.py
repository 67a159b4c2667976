"""Weights on disk and on the Hugging Face Hub.

* :func:`save_safetensors` / :func:`load_safetensors`: tavce's own format, written atomically.
* :func:`load_legacy_checkpoint`: the original ``.pth`` / ``.pth.tar`` files, opened with
  ``torch.load(weights_only=True)`` only -- a pickle that wants to run code is refused.
* :func:`resolve_weights`: a local folder (never touches the network) or a Hub repository
  (downloaded once into the Hugging Face cache; ``HF_HUB_OFFLINE=1`` or
  ``local_files_only=True`` use the cache alone).

Every failure becomes :class:`~tavce.errors.WeightsNotFoundError` or
:class:`~tavce.errors.IncompatibleWeightsError` naming the file and the next step.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
import pickle
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from tavce._writes import reporting_full_disk
from tavce.errors import IncompatibleWeightsError, InvalidArgumentError, OutputError, TavceError, WeightsNotFoundError

__all__ = [
    "save_safetensors",
    "load_safetensors",
    "open_safetensors",
    "load_legacy_checkpoint",
    "damaged_file_fix",
    "load_json",
    "resolve_weights",
]

logger = logging.getLogger(__name__)


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor], path: str | Path, *, metadata: dict[str, str] | None = None
) -> Path:
    """Write tensors to ``path`` as safetensors, atomically (temporary file + rename).

    Tensors are made contiguous and moved to the CPU; tensors sharing storage (tied
    weights) are copied, because safetensors stores each buffer once.

    Raises:
        OutputError: the folder cannot be written, or the disk is full (the message gives the
            space needed; nothing is left behind).
    """
    path = Path(path)
    seen_storages: set[int] = set()
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().cpu().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        tensors[name] = tensor.clone() if storage in seen_storages else tensor
        seen_storages.add(storage)
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise OutputError(
            f"{path}: cannot write weights there ({error.strerror}); choose an existing, writable folder"
        ) from error
    os.close(descriptor)
    with reporting_full_disk(path, needed=sum(tensor.nbytes for tensor in tensors.values())):
        try:
            save_file(tensors, temporary, metadata=metadata)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return path


_HUB_REPO_FOLDER_PREFIXES = {"models--": "", "datasets--": " --repo-type dataset", "spaces--": " --repo-type space"}


def damaged_file_fix(path: str | Path) -> str:
    """How to replace a damaged weights or config file: which file to delete and what fetches it again.

    In a Hugging Face cache (``.../models--org--name/snapshots/<commit>/<file>``) the snapshot
    entry links to a blob; the blob is what must go (the Hub client would link the damaged blob
    again), and ``hf download ... --force-download`` replaces it in one step. Elsewhere the file
    came from ``tavce convert``, ``save_pretrained`` or a copy, which are named instead.
    """
    path = Path(path)
    parts = path.parts
    for index in range(len(parts) - 2, 0, -1):
        repo_folder = parts[index - 1]
        prefix = next((p for p in _HUB_REPO_FOLDER_PREFIXES if repo_folder.startswith(p)), None)
        if parts[index] != "snapshots" or prefix is None or index + 2 >= len(parts):
            continue
        repo_id = repo_folder[len(prefix):].replace("--", "/")
        commit, filename = parts[index + 1], "/".join(parts[index + 2 :])
        cache_dir = Path(*parts[: index - 1])
        blob = path.resolve() if path.is_symlink() else path
        return (
            f"the cached download is damaged: fetch it again with `hf download {repo_id} {filename} "
            f"--revision {commit} --cache-dir {cache_dir} --force-download{_HUB_REPO_FOLDER_PREFIXES[prefix]}` "
            f"(or delete {blob} and run the same command again while online)"
        )
    return (
        f"the file is damaged: download it again from where you got it, or write it again (`tavce convert` for "
        f"converted weights, save_pretrained() for your own), replacing {path}"
    )


def load_json(path: str | Path) -> Any:
    """A weights folder's JSON file (``config.json``, ``pipeline_config.json``), parsed.

    Raises:
        IncompatibleWeightsError: not valid JSON (truncated or altered), with :func:`damaged_file_fix`.
    """
    path = Path(path)
    try:
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise IncompatibleWeightsError(f"{path}: not valid JSON ({error}); {damaged_file_fix(path)}") from error


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, on the CPU.

    Raises:
        WeightsNotFoundError: the file does not exist.
        IncompatibleWeightsError: the file is not a valid safetensors file.
    """
    with open_safetensors(path) as (shapes, read):
        return {name: read(name) for name in shapes}


_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}  # fmt: skip


@contextlib.contextmanager
def open_safetensors(
    path: str | Path,
) -> Iterator[tuple[dict[str, tuple[int, ...]], Callable[..., torch.Tensor]]]:
    """A safetensors file read lazily: (every tensor's shape by name, ``read(name, out=None)`` -> that tensor on the CPU).

    Loading weights tensor by tensor into a module built beforehand keeps one copy of
    the weights in memory, not two (the module's and a whole state dict's). The bytes are
    read from the file, not memory-mapped: pages of a mapping that were read would count as
    resident until the file is closed, a second copy of the weights at the loading peak.
    ``read(name, out=tensor)`` copies into ``tensor`` (same shape; cast when the dtypes
    differ), straight from the file when it is a contiguous CPU tensor of the file's dtype.

    Raises:
        WeightsNotFoundError: the file does not exist.
        IncompatibleWeightsError: the file is not a valid safetensors file (also while reading).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: weights file not found; check the path or download the weights again")

    def invalid(error: Exception | str) -> IncompatibleWeightsError:
        return IncompatibleWeightsError(
            f"{path}: not a valid safetensors file ({error}); {damaged_file_fix(path)}"
        )

    try:
        # safe_open validates the header (names, dtypes, shapes, offsets within the file).
        with safe_open(str(path), framework="pt", device="cpu") as file:
            shapes = {name: tuple(file.get_slice(name).get_shape()) for name in file.keys()}
        with path.open("rb") as stream:
            header_size = int.from_bytes(stream.read(8), "little")
            header = json.loads(stream.read(header_size))
            data_start = 8 + header_size

            def read(name: str, out: torch.Tensor | None = None) -> torch.Tensor:
                entry = header[name]
                dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
                if dtype is None:
                    raise invalid(f"{name}: dtype {entry['dtype']} is not supported")
                begin, end = entry["data_offsets"]
                direct = out is not None and out.device.type == "cpu" and out.dtype == dtype and out.is_contiguous()
                target = out if out is not None and direct else torch.empty(shapes[name], dtype=dtype)
                buffer = target.detach().view(-1).view(torch.uint8).numpy().data
                if len(buffer) != end - begin:
                    raise invalid(f"{name}: {end - begin} bytes for {tuple(target.shape)} {entry['dtype']}")
                stream.seek(data_start + begin)
                if len(buffer) and stream.readinto(buffer) != len(buffer):
                    raise invalid(f"{name}: the file ends inside its data")
                if out is None:
                    return target
                if direct:
                    # Written behind autograd's back: bump the version as copy_ would (caches keyed on it).
                    torch.autograd.graph.increment_version(out)
                    return out
                with torch.no_grad():
                    return out.copy_(target)

            yield shapes, read
    except (SafetensorError, OSError, ValueError) as error:
        raise invalid(error) from error


def torch_load_weights_only(path: Path, error: type[TavceError], *, unsafe_fix: str, corrupt_fix: str) -> Any:
    """``torch.load(path, weights_only=True)`` onto the CPU; a refused or unreadable file raises ``error``.

    Only tensors and plain containers are unpickled: a file whose pickle would import or
    call code is refused before anything runs. The message names the file, the problem
    and the caller's fix (``unsafe_fix`` / ``corrupt_fix``).

    Returns:
        Whatever the file holds (the callers check that it is a dictionary).

    Raises:
        error: the pickle needs code to load (unsafe), or the file is truncated, corrupt or
            not a PyTorch checkpoint.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as failure:
        raise error(
            f"{path}: refused for safety: the file contains objects that would run arbitrary code when "
            f"loaded ({str(failure).splitlines()[0]}); nothing from it was executed. {unsafe_fix}"
        ) from failure
    except (RuntimeError, EOFError, OSError, ValueError) as failure:
        raise error(f"{path}: cannot be read as a PyTorch checkpoint ({failure}); {corrupt_fix}") from failure


def load_legacy_checkpoint(path: str | Path) -> dict:
    """The dictionary stored in an original ``.pth`` / ``.pth.tar`` checkpoint.

    Only plain tensors and containers are unpickled (``torch.load(weights_only=True)``);
    a file whose pickle would import or call arbitrary code is refused before anything runs.

    Raises:
        WeightsNotFoundError: the file does not exist.
        IncompatibleWeightsError: unsafe, corrupt, or not a dictionary.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"{path}: checkpoint not found; check the path or download it again")
    checkpoint = torch_load_weights_only(
        path,
        IncompatibleWeightsError,
        unsafe_fix="Use the official checkpoint or convert it to safetensors where you trust it",
        corrupt_fix=damaged_file_fix(path),
    )
    if not isinstance(checkpoint, dict):
        raise IncompatibleWeightsError(
            f"{path}: holds a {type(checkpoint).__name__}, expected a dictionary of tensors (a state dict)"
        )
    return checkpoint


def _looks_like_folder(name: str) -> bool:
    """A path rather than a Hub id ("org/name"): absolute, relative with ./ or ~, or several levels deep."""
    return name.startswith((".", "~", "/")) or "\\" in name or name.count("/") > 1 or Path(name).is_absolute()


def _offline_requested(local_files_only: bool) -> bool:
    from huggingface_hub import constants

    # huggingface_hub reads HF_HUB_OFFLINE once at import; also honour it when set later.
    environment = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return local_files_only or bool(getattr(constants, "HF_HUB_OFFLINE", False)) or environment


def resolve_weights(
    repo_or_folder: str | Path,
    filenames: str | Sequence[str] | None = None,
    *,
    allow_patterns: str | Sequence[str] | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """The local folder holding the requested weight files.

    Args:
        repo_or_folder: an existing local folder (used as is, no network) or a Hub
            repository id such as ``"org/name"``.
        filenames: file(s) that must be present, relative to the folder / repository root.
        allow_patterns: glob pattern(s) of files to fetch from a repository instead of exact names.
        revision: branch, tag or commit of the repository (default: main).
        cache_dir: Hugging Face cache folder (default: ``HF_HUB_CACHE``).
        local_files_only: use the cache only; also implied by ``HF_HUB_OFFLINE=1``.
        token: Hub token for private or gated repositories (default: the logged-in token).

    Returns:
        The folder (a local folder, or the cached snapshot of the repository); requested
        files are ``folder / filename``.

    Raises:
        WeightsNotFoundError: the folder lacks a file, or the repository / revision / file
            cannot be found or downloaded; the message tells how to get it.
    """
    names = [filenames] if isinstance(filenames, str) else list(filenames or [])
    patterns = [allow_patterns] if isinstance(allow_patterns, str) else list(allow_patterns or [])
    if not names and not patterns:
        raise InvalidArgumentError("resolve_weights needs filenames or allow_patterns to know what to fetch")
    location = str(repo_or_folder)
    if Path(location).expanduser().is_dir() or isinstance(repo_or_folder, Path) or _looks_like_folder(location):
        return _local_folder(Path(location).expanduser(), names)
    return _hub_snapshot(location, names, patterns, revision, cache_dir, _offline_requested(local_files_only), token)


def _local_folder(folder: Path, names: list[str]) -> Path:
    if not folder.is_dir():
        raise WeightsNotFoundError(
            f"{folder}: weights folder not found; check the path, or give a Hugging Face repository id (org/name)"
        )
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise WeightsNotFoundError(
            f"{folder}: missing weight file(s) {', '.join(missing)}; copy them into this folder or download them "
            "with `hf download <repo> --local-dir <folder>`"
        )
    return folder


def _matches_any(folder: Path, patterns: list[str]) -> bool:
    files = (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())
    return any(fnmatch.fnmatch(name, pattern) for name in files for pattern in patterns)


HUB_PROBE_TIMEOUT = 3.0
"""Seconds to wait for a TCP connection to the Hub (or the proxy) before working offline."""

_hub_probe: dict[str, str | None] = {}
_hub_probe_lock = threading.Lock()


def hub_unreachable_reason() -> str | None:
    """Why the Hub cannot be reached (None when a TCP connection opens), probed once per process and endpoint.

    One connection attempt of :data:`HUB_PROBE_TIMEOUT` seconds to ``HF_ENDPOINT`` (or to the
    HTTPS proxy when one is set) replaces huggingface_hub's retries, which take about a minute
    per file when there is no network; the cache is then used as with ``HF_HUB_OFFLINE=1``.
    """
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    endpoint = urlsplit(constants.ENDPOINT)
    proxy = next((os.environ[name] for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
                  if os.environ.get(name)), None)  # fmt: skip
    target = urlsplit(proxy if proxy and "://" in proxy else f"http://{proxy}") if proxy else endpoint
    port = target.port or (443 if target.scheme == "https" else 80)
    key = f"{target.hostname}:{port}"
    with _hub_probe_lock:
        if key not in _hub_probe:
            try:
                socket.create_connection((target.hostname, port), timeout=HUB_PROBE_TIMEOUT).close()
                _hub_probe[key] = None
            except OSError as error:
                _hub_probe[key] = f"{key} cannot be reached ({error.strerror or error})"
                logger.warning("Hugging Face Hub: %s; using the local cache only", _hub_probe[key])
        return _hub_probe[key]


def _hub_snapshot(
    repo_id: str,
    names: list[str],
    patterns: list[str],
    revision: str | None,
    cache_dir: str | Path | None,
    offline: bool,
    token: str | bool | None,
) -> Path:
    import huggingface_hub
    from huggingface_hub import utils as hub_errors  # re-exports the error types in every supported version

    import tavce

    common: dict[str, Any] = dict(
        repo_id=repo_id,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=offline,
        token=token,
        library_name="tavce",
        library_version=tavce.__version__,
    )
    what = ", ".join(names + patterns)
    at_revision = f" at revision {revision!r}" if revision else ""
    unreachable = None if offline else hub_unreachable_reason()
    common["local_files_only"] = offline or unreachable is not None
    try:
        if patterns:
            folder = Path(huggingface_hub.snapshot_download(allow_patterns=patterns, **common))
        else:
            folder = None
        for name in names:
            file_path = Path(huggingface_hub.hf_hub_download(filename=name, **common))
            folder = file_path.parents[len(Path(name).parts) - 1]
    except hub_errors.LocalEntryNotFoundError as error:
        reason = (
            "downloading is off (HF_HUB_OFFLINE=1 or local_files_only=True)"
            if offline
            else f"the Hub could not be reached ({unreachable or 'no answer'})"
        )
        raise WeightsNotFoundError(
            f"{repo_id}: {what}{at_revision} not found in the local Hugging Face cache and {reason}. Run once with "
            f"network access, or `hf download {repo_id}`, or pass a local folder holding the files"
        ) from error
    except hub_errors.RevisionNotFoundError as error:
        raise WeightsNotFoundError(
            f"{repo_id}: revision {revision!r} does not exist; use a branch, tag or commit of the repository"
        ) from error
    except hub_errors.RepositoryNotFoundError as error:
        raise WeightsNotFoundError(
            f"{repo_id}: repository not found, private or gated; check the id, or log in with `hf auth login` "
            "(or pass token=...) if you have access, or pass a local folder"
        ) from error
    except hub_errors.EntryNotFoundError as error:
        raise WeightsNotFoundError(
            f"{repo_id}: {what} not found in the repository{at_revision}; check the file names"
        ) from error
    except (hub_errors.HfHubHTTPError, hub_errors.HFValidationError, OSError) as error:
        raise WeightsNotFoundError(
            f"{repo_id}: could not get {what}{at_revision} ({type(error).__name__}: {error}). Check the network "
            f"and the repository id, run `hf download {repo_id}`, or pass a local folder holding the files"
        ) from error
    folder = cast(Path, folder)  # a download above set it: names or patterns is never empty
    if patterns and not _matches_any(folder, patterns):
        raise WeightsNotFoundError(
            f"{repo_id}: no file matches {what}{at_revision}; check the patterns, or run `hf download {repo_id}`"
        )
    logger.debug("weights for %s resolved to %s", repo_id, folder)
    return folder
