"""Training: data preparation and datasets (:mod:`tavce.training.data`), one run loop for both
stages (:mod:`tavce.training.loop`: a stage is a :class:`~tavce.training.loop.StageTrainer`),
stage 1 (:mod:`tavce.training.tavc`, ``tavce train tavc``) and stage 2
(:mod:`tavce.training.renderer`, ``tavce train renderer``), and what the stages share: the
distributed context, the resumable sampler, checkpoints, the settings-file reader, the
perceptual-distance base and the run's curves (``tavce plot``).

Nothing under ``tavce.models`` imports this package; training code imports the models.
"""
