"""Command line: `python -m schedules` or the `schedules` console script."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from schedules import _validation as v


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schedules",
        description="Pruning schedules for the TensorFlow Model Optimization Toolkit.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    quick = commands.add_parser(
        "quickstart",
        help="prune a small CNN on generated data with each schedule family and print the sparsity reached "
        "(the default command)",
        description="Prune a small CNN on generated data once per schedule family (exponential, cubic, step, "
        "cyclic) with prune_low_magnitude + UpdatePruningStep, and print the scheduled final sparsity, "
        "the share of zero weights per layer after strip_pruning, and test accuracy.",
    )
    quick.add_argument("--steps", type=int, default=300, help="training steps per schedule (default: 300, >= 20)")
    quick.add_argument(
        "--final-sparsity", type=float, default=0.8, help="final sparsity of every schedule, in [0, 1) (default: 0.8)"
    )
    quick.add_argument("--seed", type=int, default=0, help="random seed for data and weights (default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in (None, "quickstart"):
        steps = getattr(args, "steps", 300)
        final = getattr(args, "final_sparsity", 0.8)
        seed = getattr(args, "seed", 0)
        try:
            v.check_int("--steps", steps, minimum=20, maximum=10**7)
            v.check_sparsity("--final-sparsity", final)
        except (TypeError, ValueError) as error:
            parser.error(str(error))
        from schedules import quickstart

        quickstart.run(steps=steps, final_sparsity=final, seed=seed)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
