"""TAVC: the temporal audio-visual correlation metric of TAVCE and its CAR regulariser.

* :class:`TAVCAudioEncoder` — Wav2Lip encoder + 512→128 projection (also gives CERL its input).
* :class:`MouthEncoder` — IResNet18 on 112×112 mouth crops.
* :mod:`~tavce.models.tavc.relationship` — the rank-one covariance of two embeddings and its similarities.
* :class:`TAVCMetric` / :class:`TemporalCorrelationMetric` — metric and its interface; :func:`stage_one_objective`.
* :func:`audio_relationships` — the per-frame relationship sequence the renderer consumes.
* :class:`CARLoss` — stage-2 regulariser.
"""

from tavce.models.tavc.audio import (
    TAVCAudioEncoder,
    TAVCAudioEncoderConfig,
    audio_relationships,
    relationships_from_embeddings,
)
from tavce.models.tavc.car import DEFAULT_CAR_WEIGHT, CARLoss
from tavce.models.tavc.metric import (
    SimilarityAverage,
    StageOneLosses,
    TAVCMetric,
    TemporalCorrelationMetric,
    stage_one_objective,
)
from tavce.models.tavc.mouth_encoder import MouthEncoder, MouthEncoderConfig
from tavce.models.tavc.relationship import (
    flattened_cosine,
    relationship_factor,
    relationship_matrix,
    row_cosine,
    temporal_relationship,
)

__all__ = [
    "TAVCAudioEncoder",
    "TAVCAudioEncoderConfig",
    "MouthEncoder",
    "MouthEncoderConfig",
    "TemporalCorrelationMetric",
    "TAVCMetric",
    "StageOneLosses",
    "stage_one_objective",
    "SimilarityAverage",
    "CARLoss",
    "DEFAULT_CAR_WEIGHT",
    "audio_relationships",
    "relationships_from_embeddings",
    "relationship_factor",
    "relationship_matrix",
    "temporal_relationship",
    "flattened_cosine",
    "row_cosine",
]
