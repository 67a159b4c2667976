"""PoseVAE: head-pose motion from audio, a style class and a random latent.

A conditional VAE over 32-frame pose-motion chunks. At inference only the
decoder runs, with ``z ~ N(0, I)``; the encoder (``with_encoder=True``) exists
for training. Motion is relative to the reference pose; frame 0 is the
reference itself (motion 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.audio2coeff.expression_net import encode_windows
from tavce.models.audio2coeff.resunet import ResUnet
from tavce.models.audio_encoder import AudioEncoder, Wav2LipAudioEncoder
from tavce.models.base import TavceModule
from tavce.types import AudioWindows

__all__ = [
    "PoseVAEConfig",
    "PoseDecoder",
    "PoseEncoder",
    "motion_chunks",
    "PoseVAE",
]

# Pose chunks decoded per decoder call (2048 frames): bounds the audio embeddings held on long clips.
_CHUNKS_PER_GROUP = 64

WindowAlignment = Literal["sadtalker", "tavce-eval"]


@dataclass(frozen=True)
class PoseVAEConfig:
    """Sizes of the PoseVAE; the defaults are the official ones.

    Attributes:
        seq_len: frames per chunk (divisible by 8 for the ResUnet).
        latent_dim: CVAE latent size.
        pose_dim: pose values per frame (3 rotations + 3 translations).
        audio_projection_dim: per-frame projection of the 512-d audio embedding.
        num_styles: pose style classes (each a learnt latent bias).
        decoder_hidden_dims: hidden widths of the decoder MLP (its output is seq_len * pose_dim).
        encoder_hidden_dims: hidden widths of the training encoder MLP.
        resunet_channels: ResUnet feature channels per level.
        with_encoder: build the training encoder too (inference never needs it).
        log_variance_from_mean: as the original, compute the encoder's log-variance with
            the *mean* layer (its log-variance layer is then dead); False uses its own layer.
    """

    seq_len: int = 32
    latent_dim: int = 64
    pose_dim: int = 6
    audio_projection_dim: int = 6
    num_styles: int = 46
    decoder_hidden_dims: tuple[int, ...] = (128,)
    encoder_hidden_dims: tuple[int, ...] = (128,)
    resunet_channels: tuple[int, int, int, int] = (32, 64, 128, 256)
    with_encoder: bool = False
    log_variance_from_mean: bool = True

    def __post_init__(self) -> None:
        if self.seq_len <= 0 or self.seq_len % 8:
            raise InvalidArgumentError(f"PoseVAEConfig.seq_len must be a positive multiple of 8, got {self.seq_len}")


def _mlp(sizes: list[int]) -> nn.ModuleList:
    return nn.ModuleList(nn.Linear(inputs, outputs) for inputs, outputs in zip(sizes[:-1], sizes[1:]))


class PoseDecoder(nn.Module):
    """(reference pose, latent + style bias, audio) -> (B, S, 6) pose motion."""

    def __init__(self, config: PoseVAEConfig, audio_embedding_dim: int) -> None:
        super().__init__()
        self.config = config
        self.audio_projection = nn.Linear(audio_embedding_dim, config.audio_projection_dim)
        self.style_bias = nn.Parameter(torch.zeros(config.num_styles, config.latent_dim))
        inputs = config.pose_dim + config.latent_dim + config.seq_len * config.audio_projection_dim
        self.mlp = _mlp([inputs, *config.decoder_hidden_dims, config.seq_len * config.pose_dim])
        self.resunet = ResUnet(config.resunet_channels)
        self.pose_projection = nn.Linear(config.pose_dim, config.pose_dim)

    def forward(
        self, audio_embeddings: torch.Tensor, reference_pose: torch.Tensor, style: torch.Tensor, latent: torch.Tensor
    ) -> torch.Tensor:
        """Args: audio_embeddings (B, S, D), reference_pose (B, 6), style (B,) int64, latent (B, latent_dim).

        Returns: (B, S, 6) motion relative to the reference pose.
        """
        batch = audio_embeddings.shape[0]
        audio = self.audio_projection(audio_embeddings).reshape(batch, -1)
        hidden = torch.cat([reference_pose, latent + self.style_bias[style], audio], dim=1)
        for index, layer in enumerate(self.mlp):
            hidden = layer(hidden)
            hidden = torch.sigmoid(hidden) if index == len(self.mlp) - 1 else torch.relu(hidden)
        sequence = hidden.reshape(batch, 1, self.config.seq_len, self.config.pose_dim)
        return self.pose_projection(self.resunet(sequence).squeeze(1))


class PoseEncoder(nn.Module):
    """Training-time CVAE encoder: (motion, reference pose, audio, style) -> (mean, log-variance)."""

    def __init__(self, config: PoseVAEConfig, audio_embedding_dim: int) -> None:
        super().__init__()
        self.config = config
        self.audio_projection = nn.Linear(audio_embedding_dim, config.audio_projection_dim)
        self.style_bias = nn.Parameter(torch.zeros(config.num_styles, config.latent_dim))
        self.resunet = ResUnet(config.resunet_channels)
        inputs = config.pose_dim + config.seq_len * (config.pose_dim + config.audio_projection_dim) + config.latent_dim
        self.mlp = _mlp([inputs, *config.encoder_hidden_dims])
        self.mean = nn.Linear(config.encoder_hidden_dims[-1], config.latent_dim)
        self.log_variance = nn.Linear(config.encoder_hidden_dims[-1], config.latent_dim)

    def forward(
        self,
        pose_motion: torch.Tensor,
        audio_embeddings: torch.Tensor,
        reference_pose: torch.Tensor,
        style: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: pose_motion (B, S, 6) target motion, audio_embeddings (B, S, D), reference_pose (B, 6), style (B,).

        Returns: mean and log-variance, each (B, latent_dim).
        """
        batch = pose_motion.shape[0]
        pose_features = self.resunet(pose_motion.unsqueeze(1)).reshape(batch, -1)
        audio = self.audio_projection(audio_embeddings).reshape(batch, -1)
        hidden = torch.cat([reference_pose, pose_features, audio, self.style_bias[style]], dim=1)
        for layer in self.mlp:
            hidden = torch.relu(layer(hidden))
        mean = self.mean(hidden)
        log_variance = self.mean(hidden) if self.config.log_variance_from_mean else self.log_variance(hidden)
        return mean, log_variance


def motion_chunks(
    num_frames: int, seq_len: int, alignment: WindowAlignment = "sadtalker"
) -> list[tuple[torch.Tensor, int]]:
    """How the original cuts a clip into decoder chunks.

    Frames 1 .. T-1 are predicted (frame 0 is the reference). With ``"sadtalker"``
    the candidate windows are 1 .. T-1 (window k drives frame k); ``"tavce-eval"``
    uses windows 0 .. T-1 for the full chunks (window k drives frame k+1: the audio one frame early, as TAVCE's evaluation script).
    ⌊(T-1)/S⌋ full chunks of S consecutive candidates, then, if r = (T-1) mod S ≠ 0,
    the last S candidates (left-padded with the first one when fewer exist), of
    which only the last r outputs are kept.

    Returns:
        (window indices (S,) int64, number of trailing outputs kept) per chunk, in draw order.
    """
    first = 1 if alignment == "sadtalker" else 0
    candidates = torch.arange(first, num_frames)
    full, remainder = divmod(num_frames - 1, seq_len)
    chunks = [(candidates[seq_len * index : seq_len * (index + 1)], seq_len) for index in range(full)]
    if remainder:
        tail = candidates[-seq_len:]
        padding = tail[:1].expand(seq_len - len(tail))
        chunks.append((torch.cat([padding, tail]), remainder))
    return chunks


class PoseVAE(TavceModule):
    """Audio encoder (Wav2Lip by default) + CVAE decoder (+ training encoder)."""

    config_class = PoseVAEConfig
    component_slots = {"audio_encoder": "audio_encoder"}

    def __init__(self, config: PoseVAEConfig = PoseVAEConfig(), *, audio_encoder: AudioEncoder | None = None) -> None:
        super().__init__(config)
        self.audio_encoder = audio_encoder if audio_encoder is not None else Wav2LipAudioEncoder()
        embedding_dim = self.audio_encoder.embedding_dim
        self.decoder = PoseDecoder(config, embedding_dim)
        self.encoder = PoseEncoder(config, embedding_dim) if config.with_encoder else None

    def forward(
        self,
        pose_motion: torch.Tensor,
        audio_embeddings: torch.Tensor,
        reference_pose: torch.Tensor,
        style: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: encode, sample with the reparameterisation trick, decode.

        Returns: predicted motion (B, S, 6), mean and log-variance (B, latent_dim).
        """
        if self.encoder is None:
            raise InvalidArgumentError("PoseVAE.forward needs the training encoder: build it with with_encoder=True")
        mean, log_variance = self.encoder(pose_motion, audio_embeddings, reference_pose, style)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        latent = mean + noise * torch.exp(0.5 * log_variance)
        return self.decoder(audio_embeddings, reference_pose, style, latent), mean, log_variance

    def num_chunks(self, num_frames: int) -> int:
        """Latents :meth:`sample_motion` needs for a clip of ``num_frames`` frames."""
        return len(motion_chunks(num_frames, self.config.seq_len))

    def sample_motion(
        self,
        windows: torch.Tensor | AudioWindows,
        reference_pose: torch.Tensor,
        style: int,
        latents: torch.Tensor,
        alignment: WindowAlignment = "sadtalker",
    ) -> torch.Tensor:
        """Pose motion of a whole clip (test-time decoder).

        Args:
            windows: the clip's T mel windows ((T, 1, 80, 16) or :class:`~tavce.types.AudioWindows`).
            reference_pose: (6,) the source pose (radians, then translation).
            style: pose style class in [0, num_styles).
            latents: (num_chunks(T), latent_dim) standard-normal draws, one per chunk in order.
            alignment: window/frame alignment of the full chunks (see :func:`motion_chunks`).

        Returns:
            (T, 6) motion relative to ``reference_pose``; row 0 is zero.
        """
        windows = windows if isinstance(windows, AudioWindows) else AudioWindows(windows)
        chunks = motion_chunks(windows.num_frames, self.config.seq_len, alignment)
        if latents.shape != (len(chunks), self.config.latent_dim):
            raise InvalidArgumentError(
                f"latents must be ({len(chunks)}, {self.config.latent_dim}) for {windows.num_frames} frames, "
                f"got {tuple(latents.shape)}"
            )
        motion = reference_pose.new_zeros(windows.num_frames, self.config.pose_dim)
        filled = 1
        # Chunks are decoded independently; a group at a time, only the group's windows are encoded.
        for first in range(0, len(chunks), _CHUNKS_PER_GROUP):
            group = chunks[first : first + _CHUNKS_PER_GROUP]
            indices = torch.stack([chunk for chunk, _ in group])
            low, high = int(indices.min()), int(indices.max()) + 1
            embeddings = encode_windows(
                self.audio_encoder, windows.select(slice(low, high)).to(reference_pose.device, reference_pose.dtype)
            )
            decoded = self.decoder(
                embeddings[(indices - low).to(embeddings.device)],
                reference_pose.expand(len(group), -1),
                torch.full((len(group),), style, dtype=torch.long, device=embeddings.device),
                latents[first : first + len(group)].to(embeddings),
            )
            for chunk_motion, (_, kept) in zip(decoded, group):
                motion[filled : filled + kept] = chunk_motion[-kept:]
                filled += kept
        return motion
