"""`make quickstart`: the paper's central result in miniature, on CPU.

Scripted-expert demos on the LEFT half of the bowl-position grid in the built-in tabletop scene; a
PARA policy and a global-pool-MLP regression policy trained on the same tiny CNN and the same data;
both evaluated on the RIGHT half (spatial extrapolation, teleport servo, fixed seeds). Prints a table
like the paper's and where the report, plots and rollout videos were written. It is the suite
configs/suite/quickstart.yaml:

    python -m video_para.quickstart [suite.seeds=[0,1]] [key=value ...]   # overrides apply to both methods
"""
from __future__ import annotations

import sys

from .config import exit_if_help
from .suite import SuiteConfig
from .suite import main as run_suite


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    exit_if_help(argv, "python -m video_para.quickstart [suite.field=value ...] [key=value ...]", __doc__, SuiteConfig)
    run_suite(["quickstart", *argv])


if __name__ == "__main__":
    main()
