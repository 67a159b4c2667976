"""Training: data preparation and datasets (:mod:`tavce.training.data`); the trainers build on them.

Nothing under ``tavce.models`` imports this package; training code imports the models.
"""
