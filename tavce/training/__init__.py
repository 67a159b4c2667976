"""Training: data preparation and datasets (:mod:`tavce.training.data`), the stage-1 trainer
(:mod:`tavce.training.tavc`, ``tavce train tavc``) and what trainers share: the distributed
context, the resumable sampler, checkpoints, the LPIPS-style perceptual distance and CAR.

Nothing under ``tavce.models`` imports this package; training code imports the models.
"""
