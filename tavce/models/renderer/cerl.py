"""CERL fusion: the TAVCE audio relationship modulates the source appearance feature.

Exactly what the original generator computes, on the
512-channel feature F right after the encoder's last 1x1 conv:

1. N = R / max(‖R_row‖₂, 1e-12), each row of the (128, 128) relationship R
   normalised over the last axis;
2. only the diagonal of N is used (the original einsum ``bcc,bchw->bchw``; the
   paper describes a matrix product, the checkpoint was trained with this): a
   per-channel weight w_c = N_cc;
3. F' = F + proj_up(w ⊙ proj_down(F));
4. F'' = output(F'), a further 1x1 conv, applied only when a relationship is given.

Because R = ½·d·dᵀ with d = a_prev - a_cur (the original's covariance of two
embeddings, not divided by the count), row c of R is ½·d_c·d, so
‖R_c‖ = ½·|d_c|·‖d‖ and N_cc = (½·d_c²) / max(½·|d_c|·‖d‖, 1e-12). This O(C)
form is evaluated with the same clamp as the matrix form, so tiny or zero
differences behave identically (d = 0, frame 0: w = 0 and F'' = output(F +
bias(proj_up)), as in the original, whose frame 0 pairs a window with itself). Passing no relationship at all skips the fusion
including ``output``; that is the generator's job (see generator.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tavce.errors import InvalidArgumentError
from tavce.models.renderer.precision import Float32Weights

__all__ = [
    "CERLConfig",
    "channel_weights",
    "CERLFusion",
]

NORMALIZE_EPS = 1e-12


@dataclass(frozen=True)
class CERLConfig:
    """Sizes of the fusion: feature channels (encoder output) and relationship size."""

    feature_channels: int = 512
    relationship_dim: int = 128


def channel_weights(relationship: torch.Tensor, relationship_dim: int) -> torch.Tensor:
    """Per-channel CERL weights w (B, D) from differences d (B, D) or matrices R (B, D, D).

    Both forms give diag(R / max(‖R_row‖, 1e-12)); for d this is computed in O(D)
    from R = ½·d·dᵀ without building the matrix. Half-precision inputs are computed in
    float32 (the 1e-12 clamp underflows to 0 in float16, which would turn frame 0 into 0/0).

    Raises:
        InvalidArgumentError: the shape is neither (B, D) nor (B, D, D).
    """
    relationship = relationship.to(torch.promote_types(relationship.dtype, torch.float32))
    if relationship.ndim == 2 and relationship.shape[1] == relationship_dim:
        halved_squares = 0.5 * relationship * relationship
        row_norms = 0.5 * relationship.abs() * torch.linalg.vector_norm(relationship, dim=1, keepdim=True)
        return halved_squares / row_norms.clamp_min(NORMALIZE_EPS)
    if relationship.ndim == 3 and relationship.shape[1:] == (relationship_dim, relationship_dim):
        row_norms = torch.linalg.vector_norm(relationship, dim=2).clamp_min(NORMALIZE_EPS)
        return torch.diagonal(relationship, dim1=1, dim2=2) / row_norms
    raise InvalidArgumentError(
        f"audio relationship: expected differences (B, {relationship_dim}) or matrices "
        f"(B, {relationship_dim}, {relationship_dim}), got {tuple(relationship.shape)}; "
        "pass AudioRelationship.differences rows or their ½·d·dᵀ matrices."
    )


class CERLFusion(Float32Weights, nn.Module):
    """The three 1x1 convs of CERL and the fusion described in the module docstring.

    ``proj_down`` (original ``proj1``) 512→128, ``proj_up`` (``proj2``) 128→512,
    ``output`` (``linear``) 512→512, all with bias.

    Part of the generator's float32 volume path (generator.py): its weights stay float32
    when the generator is cast to a half type, and it computes in its weights' dtype.
    """

    def __init__(self, config: CERLConfig) -> None:
        super().__init__()
        self.config = config
        self.proj_down = nn.Conv2d(config.feature_channels, config.relationship_dim, kernel_size=1)
        self.proj_up = nn.Conv2d(config.relationship_dim, config.feature_channels, kernel_size=1)
        self.output = nn.Conv2d(config.feature_channels, config.feature_channels, kernel_size=1)

    def forward(self, features: torch.Tensor, relationship: torch.Tensor) -> torch.Tensor:
        """Fuse.

        Args:
            features: F, (B, 512, h, w) encoder output (or (1, ...) broadcast to the batch).
            relationship: (B, 128) differences d or (B, 128, 128) matrices R, one per frame.

        Returns:
            (B, 512, h, w) fused feature F''.
        """
        features = features.to(self.proj_down.weight.dtype)
        weights = channel_weights(relationship, self.config.relationship_dim).to(features.dtype)
        projected = self.proj_down(features)
        modulated = weights[:, :, None, None] * projected
        return self.output(features + self.proj_up(modulated))
