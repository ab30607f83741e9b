"""``python -m advbench``: the ``advbench`` command, for launchers such as ``torchrun -m advbench eval ...``."""

from .cli import main

raise SystemExit(main())
