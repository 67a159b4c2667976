"""Golden checks for the TAVC metric (reference-training.md §2, reference-pipeline.md §5.1).

Weights go original names -> :mod:`tavce.convert.tavc` -> strict load; sizes come
from each case's recorded constructor arguments and input shapes.
"""

from __future__ import annotations

import torch

from tavce.convert.tavc import convert_audio_encoder, convert_mouth_encoder
from tavce.models.base import load_state_dict_strict
from tavce.models.renderer.cerl import channel_weights
from tavce.models.tavc import (
    MouthEncoder,
    MouthEncoderConfig,
    TAVCAudioEncoder,
    TAVCAudioEncoderConfig,
    TAVCMetric,
    flattened_cosine,
    relationship_factor,
    relationships_from_embeddings,
    row_cosine,
    temporal_relationship,
)
from tavce.training.tavc import SimilarityAverage, stage_one_objective
from tavce.types import AudioWindows
from tests.golden.harness import CaseResult, GoldenCase


def _audio_encoder(case: GoldenCase, constructor_kwargs: dict) -> TAVCAudioEncoder:
    config = TAVCAudioEncoderConfig(embedding_dim=int(constructor_kwargs.get("dim", 128)))
    encoder = TAVCAudioEncoder(config)
    load_state_dict_strict(encoder, convert_audio_encoder(case.only_state_dict()), source=case.name)
    return encoder.eval()


def check_audio_encoder(case: GoldenCase) -> CaseResult:
    """AudioEncoder(dim).eval(): the 512-d Wav2Lip embedding and the projected features."""
    encoder = _audio_encoder(case, case.meta["weights"]["constructor_kwargs"])
    with torch.no_grad():
        embedding = encoder.backbone(case.inputs["mels"])
        features = encoder(case.inputs["mels"])
    return CaseResult(outputs={"embedding_512": embedding, "features": features})


def check_image_encoder(case: GoldenCase) -> CaseResult:
    """IResNet18(num_features).eval() on the recorded mouth crops."""
    kwargs = case.meta["weights"]["constructor_kwargs"]
    config = MouthEncoderConfig(
        image_size=int(case.inputs["images"].shape[-1]),
        blocks_per_stage=tuple(int(n) for n in kwargs.get("layers", (2, 2, 2, 2))),
        embedding_dim=int(kwargs["num_features"]),
        dropout=float(kwargs.get("dropout", 0.0)),
    )
    encoder = MouthEncoder(config)
    load_state_dict_strict(encoder, convert_mouth_encoder(case.only_state_dict()), source=case.name)
    with torch.no_grad():
        features = encoder.eval()(case.inputs["images"])
    return CaseResult(outputs={"features": features})


def check_correlation(case: GoldenCase) -> CaseResult:
    """Covariances, stage-1 losses for each alpha, logged similarities and their EMA, inference sequence."""
    audio, visual = case.inputs["audio_features"], case.inputs["image_features"]
    audio_factor = relationship_factor(audio[:, 0], audio[:, 1])
    positive_factor = relationship_factor(visual[:, 0], visual[:, 1])
    negative_factor = relationship_factor(visual[:, 0], visual[:, 2])
    objectives = [
        stage_one_objective(audio_factor, positive_factor, negative_factor, float(alpha))
        for alpha in case.inputs["alpha"]
    ]
    average = SimilarityAverage()
    smoothed = [average.update(float(similarity)) for similarity in case.inputs["mval_sims"]]
    sequences = [relationships_from_embeddings(clip).as_matrices() for clip in case.inputs["audio_feature_seq"]]
    return CaseResult(
        outputs={
            "audio_correlation": temporal_relationship(audio[:, 0], audio[:, 1]),
            "image_correlation_pos": temporal_relationship(visual[:, 0], visual[:, 1]),
            "image_correlation_neg": temporal_relationship(visual[:, 0], visual[:, 2]),
            "cos_flat_pos": flattened_cosine(audio_factor, positive_factor),
            "cos_flat_neg": flattened_cosine(audio_factor, negative_factor),
            "loss_pos": objectives[0].positive,
            "loss_neg": objectives[0].negative,
            "loss_contrastive": torch.stack([objective.total for objective in objectives]),
            "sim_pos": row_cosine(audio_factor, positive_factor).mean(),
            "sim_neg": row_cosine(audio_factor, negative_factor).mean(),
            "mval_values": torch.tensor(smoothed, dtype=torch.float64),
            "cor_seq": torch.stack(sequences),
            # The generator's CERL gate (diagonal of the row-normalised relationship) on the audio pair.
            "generator_cor_gate": channel_weights(audio_factor, audio_factor.shape[1]),
        }
    )


def check_audio_correlation(case: GoldenCase) -> CaseResult:
    """Encoder features of [window j−1, window j] and the relationship of frame j, via the metric's audio_relationships."""
    module = next(iter(case.meta["modules"].values()))
    encoder = _audio_encoder(case, module["constructor_kwargs"])
    # The mouth encoder plays no part in audio relationships: a small one of the same embedding size.
    mouth_encoder = MouthEncoder(
        MouthEncoderConfig(image_size=16, stem_channels=4, stage_channels=(4,), blocks_per_stage=(1,), embedding_dim=encoder.embedding_dim)
    )
    metric = TAVCMetric(audio_encoder=encoder, mouth_encoder=mouth_encoder).eval()
    features, matrices = [], []
    with torch.no_grad():
        for clip in case.inputs["indiv_mels"]:
            features.append(encoder(clip))
            # The last frame pairs the two recorded windows; frame 0 of the pair is the zero relationship.
            matrices.append(metric.audio_relationships(AudioWindows(clip)).as_matrices()[-1])
    return CaseResult(outputs={"audio_features": torch.stack(features), "cor": torch.stack(matrices)})
