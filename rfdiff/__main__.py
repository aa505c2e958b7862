"""``python -m rfdiff``: the command line."""

from .cli import main

raise SystemExit(main())
