"""Training: data preparation and datasets (:mod:`tavce.training.data`), the stage-1 trainer
(:mod:`tavce.training.tavc`, ``tavce train tavc``), the stage-2 trainer
(:mod:`tavce.training.renderer`, ``tavce train renderer``) and what trainers share: the
distributed context, the resumable sampler, checkpoints, the epoch/step loop
(:mod:`tavce.training.loop`), the LPIPS-style perceptual distance and CAR.

Nothing under ``tavce.models`` imports this package; training code imports the models.
"""
