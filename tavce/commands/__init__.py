"""``tavce`` sub-commands, one module each, registered in :data:`tavce.cli.SUBCOMMAND_MODULES`.

A module defines ``SUBCOMMAND = Subcommand(...)`` and imports heavy libraries
(torch, huggingface_hub) inside its ``run`` function only, so ``tavce --help``
stays fast.
"""
