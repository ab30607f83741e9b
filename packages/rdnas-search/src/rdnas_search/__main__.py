"""``python -m rdnas_search``: the ``rdnas-search`` command, for launchers such as ``torchrun -m rdnas_search run``."""

from .cli import main

raise SystemExit(main())
