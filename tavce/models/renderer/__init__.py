"""Face renderer (reference-pipeline.md §4, §5): keypoints, MappingNet, generator, CERL.

Import from the submodules, e.g. ``tavce.models.renderer.renderer.CERLRenderer`` or
``tavce.models.renderer.generator.OcclusionAwareSPADEGenerator``.
"""
