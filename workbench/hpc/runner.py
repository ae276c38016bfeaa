"""``python -m workbench.hpc.runner``: the runner's former path, which job scripts written before
it moved to :mod:`workbench.jobs.runner` still call."""

from __future__ import annotations

import sys

from workbench.jobs.runner import main

if __name__ == "__main__":
    sys.exit(main())
