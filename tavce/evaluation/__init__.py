"""Evaluation metrics of the paper (section IV-A): FID, CSIM, LSE-D / LSE-C, and the TAVC similarity.

See docs/evaluation.md. Each metric's backbone sits behind a small interface a user can
replace (:class:`FeatureExtractor`); official backbone weights are loaded from files.
"""

from tavce.evaluation.backbones import (
    load_feature_extractor,
    load_identity_encoder,
    load_module_folder,
    load_sync_encoder,
    load_tavc_metric,
)
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
from tavce.evaluation.report import EvaluationReport, VideoScores
from tavce.evaluation.runner import EvaluationConfig, MetricBackbones, VideoPair, evaluate_videos, pair_videos
from tavce.evaluation.self_reconstruction import SelfReconstructionConfig, self_reconstruct
from tavce.evaluation.sync import SyncConfig, SyncEncoder, SyncScores, lse, offset_distances, sync_scores
from tavce.evaluation.syncnet import SyncNet, SyncNetConfig, load_syncnet
from tavce.evaluation.tavc import TAVCSimilarity, TAVCSimilarityConfig, mouth_crops, tavc_similarity

__all__ = [
    "ArcFaceEncoder",
    "CSIMConfig",
    "EvaluationConfig",
    "EvaluationReport",
    "FIDInceptionConfig",
    "FIDInceptionV3",
    "FeatureExtractor",
    "GaussianStatistics",
    "IdentityEncoder",
    "MetricBackbones",
    "SelfReconstructionConfig",
    "SyncConfig",
    "SyncEncoder",
    "SyncNet",
    "SyncNetConfig",
    "SyncScores",
    "TAVCSimilarity",
    "TAVCSimilarityConfig",
    "TorchIdentityEncoder",
    "VideoPair",
    "VideoScores",
    "align_faces",
    "csim",
    "evaluate_videos",
    "extract_features",
    "fid",
    "frechet_distance",
    "frechet_distance_from_statistics",
    "gaussian_statistics",
    "identity_embeddings",
    "load_feature_extractor",
    "load_fid_inception",
    "load_identity_encoder",
    "load_module_folder",
    "load_sync_encoder",
    "load_syncnet",
    "load_tavc_metric",
    "lse",
    "mouth_crops",
    "offset_distances",
    "pair_videos",
    "self_reconstruct",
    "sync_scores",
    "tavc_similarity",
]
