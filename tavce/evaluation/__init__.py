"""Evaluation metrics of the paper (§IV-A): FID, CSIM, LSE-D / LSE-C, and the TAVC similarity.

See docs/evaluation.md. Each metric's backbone sits behind a small interface a user can
replace (:class:`FeatureExtractor`); official backbone weights are loaded from files.
"""

from tavce.evaluation.fid import FeatureExtractor, extract_features, fid
from tavce.evaluation.frechet import (
    GaussianStatistics,
    frechet_distance,
    frechet_distance_from_statistics,
    gaussian_statistics,
)
from tavce.evaluation.identity import (
    ArcFaceEncoder,
    CSIMConfig,
    IdentityEncoder,
    TorchIdentityEncoder,
    align_faces,
    csim,
    identity_embeddings,
)
from tavce.evaluation.inception import FIDInceptionConfig, FIDInceptionV3, load_fid_inception
from tavce.evaluation.sync import SyncConfig, SyncEncoder, SyncScores, lse, offset_distances, sync_scores
from tavce.evaluation.syncnet import SyncNet, SyncNetConfig, load_syncnet
from tavce.evaluation.tavc import TAVCSimilarity, TAVCSimilarityConfig, mouth_crops, tavc_similarity

__all__ = [
    "FeatureExtractor",
    "extract_features",
    "fid",
    "GaussianStatistics",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "gaussian_statistics",
    "FIDInceptionConfig",
    "FIDInceptionV3",
    "load_fid_inception",
    "IdentityEncoder",
    "ArcFaceEncoder",
    "TorchIdentityEncoder",
    "CSIMConfig",
    "align_faces",
    "identity_embeddings",
    "csim",
    "SyncEncoder",
    "SyncConfig",
    "SyncScores",
    "offset_distances",
    "sync_scores",
    "lse",
    "SyncNet",
    "SyncNetConfig",
    "load_syncnet",
    "TAVCSimilarity",
    "TAVCSimilarityConfig",
    "mouth_crops",
    "tavc_similarity",
]
