"""Temporal relationships of embedding pairs and the similarities between them.

TAVCE describes the change between two consecutive frames by the covariance of
their two embeddings x, y (treated as two samples, no division by the count):

    C(x, y) = Σ_{s∈{x,y}} (s − m)(s − m)ᵀ,  m = (x + y)/2,  which equals ½·d·dᵀ with d = x − y.

Every C is rank one, so the library carries the factor d (the "relationship
factor", B×D) and builds the D×D matrix only where a consumer needs it. All
similarities below are computed from the factors in O(B·D) and equal, up to float
rounding, PyTorch's functions on the full matrices (tested):

* :func:`flattened_cosine` = cosine of the flattened matrices with the eps of
  ``F.cosine_embedding_loss`` (the stage-1 loss and CAR) = cos²(d_a, d_v), so
  the sign of each difference is lost and the value is never negative;
* :func:`row_cosine` = ``F.cosine_similarity(R_a, R_v, dim=-1)`` per row (the
  figure the original trainer logs) = sign(d_a,c · d_v,c)·cos(d_a, d_v).
"""

from __future__ import annotations

import torch

from tavce.errors import InvalidArgumentError

__all__ = [
    "relationship_factor",
    "relationship_matrix",
    "temporal_relationship",
    "flattened_cosine",
    "row_cosine",
]

# F.cosine_embedding_loss adds this to both squared norms before the square root.
EMBEDDING_LOSS_EPS = 1e-12
# F.cosine_similarity clamps each norm to at least this value.
COSINE_SIMILARITY_EPS = 1e-8


def _check_pair(first: torch.Tensor, second: torch.Tensor, what: str) -> None:
    if first.ndim != 2 or first.shape != second.shape:
        raise InvalidArgumentError(
            f"{what}: expected two (B, D) tensors of the same shape, got {tuple(first.shape)} and "
            f"{tuple(second.shape)}; pass one embedding (or relationship factor) per row."
        )


def relationship_factor(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """Factor d = previous − current of the relationship ½·d·dᵀ.

    Args:
        previous: (B, D) embeddings of the earlier frame (a_prev).
        current: (B, D) embeddings of the later frame (a_cur).

    Returns:
        (B, D) factors; zero where both embeddings are equal (frame 0 at inference).
    """
    _check_pair(previous, current, "relationship_factor")
    return previous - current


def relationship_matrix(factor: torch.Tensor) -> torch.Tensor:
    """(B, D) factors d -> (B, D, D) relationship matrices ½·d·dᵀ."""
    if factor.ndim != 2:
        raise InvalidArgumentError(f"relationship_matrix: expected (B, D) factors, got {tuple(factor.shape)}")
    return 0.5 * factor.unsqueeze(2) * factor.unsqueeze(1)


def temporal_relationship(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The original's covariance of two embeddings, (B, D, D) (not divided by the count).

    Computed as the scatter of the two samples around their mean, as the original
    does, so its rounding matches the recorded matrices; equal to
    ``relationship_matrix(relationship_factor(first, second))``.
    """
    _check_pair(first, second, "temporal_relationship")
    samples = torch.stack([first, second], dim=1)
    centred = samples - samples.mean(dim=1, keepdim=True)
    return centred.transpose(1, 2) @ centred


def flattened_cosine(audio_factor: torch.Tensor, visual_factor: torch.Tensor) -> torch.Tensor:
    """Cosine of the flattened relationship matrices, from their factors, (B,) in [0, 1].

    Equals ``cos(vec ½d_a d_aᵀ, vec ½d_v d_vᵀ)`` as ``F.cosine_embedding_loss``
    computes it (eps 1e-12 added to each squared norm), i.e. cos²(d_a, d_v); a zero
    factor (frame 0) gives 0.
    """
    _check_pair(audio_factor, visual_factor, "flattened_cosine")
    # ⟨vec ½aaᵀ, vec ½vvᵀ⟩ = ¼(a·v)², ‖vec ½aaᵀ‖² = ¼‖a‖⁴.
    product = 0.25 * (audio_factor * visual_factor).sum(dim=1).square()
    audio_square = 0.25 * audio_factor.square().sum(dim=1).square() + EMBEDDING_LOSS_EPS
    visual_square = 0.25 * visual_factor.square().sum(dim=1).square() + EMBEDDING_LOSS_EPS
    return product / (audio_square * visual_square).sqrt()


def row_cosine(audio_factor: torch.Tensor, visual_factor: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of the relationship matrices, from their factors, (B, D) in [−1, 1].

    Row c of ½·d·dᵀ is ½·d_c·d, so each row's cosine is sign(d_a,c·d_v,c)·cos(d_a, d_v)
    (0 for a zero row); computed with ``F.cosine_similarity``'s per-norm eps.
    """
    _check_pair(audio_factor, visual_factor, "row_cosine")
    audio_norm = audio_factor.norm(dim=1, keepdim=True)
    visual_norm = visual_factor.norm(dim=1, keepdim=True)
    audio_row_norms = (0.5 * audio_factor.abs() * audio_norm).clamp_min(COSINE_SIMILARITY_EPS)
    visual_row_norms = (0.5 * visual_factor.abs() * visual_norm).clamp_min(COSINE_SIMILARITY_EPS)
    dot = (audio_factor * visual_factor).sum(dim=1, keepdim=True)
    return 0.25 * audio_factor * visual_factor * dot / (audio_row_norms * visual_row_norms)
