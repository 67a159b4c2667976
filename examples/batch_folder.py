"""Animate every photo of one folder with every clip of another: one mp4 per (photo, clip) pair.

    python examples/batch_folder.py photos/ clips/ -o videos/
    python examples/batch_folder.py photos/ clips/ -o videos/ --mode full --seed 0 --device cuda

Each photo is prepared once (face detection, crop, 3DMM coefficients) and the resulting
``PreparedSource`` animates all the clips; it is also saved beside the videos
(``<photo>.<mode>.prepared.safetensors``), so a second run skips the preparation, and
videos that already exist are skipped unless ``--overwrite`` is given. A photo or clip
that fails (no face found, unreadable file) is reported and the batch goes on; the exit
status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tavce import TalkingHeadPipeline, TavceError
from tavce.audio import load_audio
from tavce.cli import parse_face_box
from tavce.preprocess import PreparedSource

logger = logging.getLogger("batch_folder")

PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
CLIP_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"}


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photos", type=Path, help="folder of portrait photos (png, jpg, webp ...)")
    parser.add_argument("clips", type=Path, help="folder of speech clips (wav, flac, ogg, mp3 ...)")
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("talking_heads"), help="default: %(default)s")
    parser.add_argument(
        "--weights", default=None, help="tavce folder, official-files folder or Hub repo (default: official SadTalker)"
    )
    parser.add_argument(
        "--face-box", type=parse_face_box, default=None, metavar="X0,Y0,X1,Y1",
        help="one face box (photo pixels) used for every photo, e.g. for photos framed alike; skips face detection",
    )
    parser.add_argument(
        "--mode", default="crop", choices=("crop", "extcrop", "resize", "full", "extfull"),
        help="crop mode (docs/modes.md; default: %(default)s)",
    )
    parser.add_argument("--still", action="store_true", help="keep each photo's head pose; only the face moves")
    parser.add_argument("--seed", type=int, default=None, help="same seed, same videos (default: random)")
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="frames rendered together (default: from free GPU memory on CUDA, 1 on the CPU)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 or mps (default: cuda when available)")
    parser.add_argument("--overwrite", action="store_true", help="render videos that already exist again")
    return parser.parse_args(argv)


def files_with_suffix(folder: Path, suffixes: set[str]) -> list[Path]:
    """The folder's files with one of ``suffixes``, sorted by name (empty when it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in suffixes)


def prepared_source(pipe: TalkingHeadPipeline, photo: Path, arguments: argparse.Namespace) -> PreparedSource:
    """The photo prepared once: read back from the output folder when an earlier run saved it."""
    cache = arguments.output_dir / f"{photo.stem}.{arguments.mode}.prepared.safetensors"
    # Reused only without --face-box (another box needs a new preparation) and when the photo is older.
    if cache.is_file() and arguments.face_box is None and cache.stat().st_mtime >= photo.stat().st_mtime:
        source = PreparedSource.load(cache)
        if source.size == pipe.size:
            logger.info("%s: reusing %s", photo.name, cache.name)
            return source
    logger.info("%s: preparing (%s mode, %d px)", photo.name, arguments.mode, pipe.size)
    source = pipe.preprocessor.prepare(photo, arguments.mode, pipe.size, face_box=arguments.face_box)
    source.save(cache)
    return source


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    photos = files_with_suffix(arguments.photos, PHOTO_SUFFIXES)
    clip_paths = files_with_suffix(arguments.clips, CLIP_SUFFIXES)
    searched = ((arguments.photos, photos, PHOTO_SUFFIXES), (arguments.clips, clip_paths, CLIP_SUFFIXES))
    for folder, found, suffixes in searched:
        if not found:
            logger.error("%s: not a folder, or no files ending in %s in it", folder, ", ".join(sorted(suffixes)))
            return 2
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    try:
        pipe = TalkingHeadPipeline.from_pretrained(arguments.weights, device=arguments.device)
    except TavceError as error:
        logger.error("%s", error)
        return 2

    # Decoding and resampling each clip once; the mel windows are cheap and recomputed per video.
    clips = {}
    for path in clip_paths:
        try:
            clips[path] = load_audio(path)
        except TavceError as error:
            logger.error("skipping clip %s", error)
    failures = len(clip_paths) - len(clips)
    written = 0
    for photo in photos:
        try:
            source = prepared_source(pipe, photo, arguments)
        except TavceError as error:
            logger.error("skipping photo %s", error)
            failures += 1
            continue
        for clip_path, clip in clips.items():
            output = arguments.output_dir / f"{photo.stem}__{clip_path.stem}.mp4"
            if output.exists() and not arguments.overwrite:
                logger.info("%s exists; skipped (--overwrite renders it again)", output.name)
                continue
            try:
                result = pipe(
                    source, clip, still=arguments.still, seed=arguments.seed,
                    batch_size=arguments.batch_size, progress=False,
                )
                result.save(output)
            except TavceError as error:
                logger.error("%s: %s", output.name, error)
                failures += 1
                continue
            written += 1
            logger.info("%s: %d frames", output.name, result.num_frames)
    logger.info("wrote %d video(s) to %s; %d failure(s)", written, arguments.output_dir, failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
