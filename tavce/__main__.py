"""``python -m tavce``: same as the ``tavce`` command."""

from tavce.cli import main

raise SystemExit(main())
