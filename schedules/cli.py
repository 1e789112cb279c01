"""Command line: `python -m schedules` or the `schedules` console script.

Commands:
  demo        prune a small CNN on scikit-learn's digits (the default command)
  plot        draw schedules into a PNG or SVG file
  gallery     regenerate the pictures in plots/
  quickstart  prune a small CNN on generated data with each family, print the sparsity reached
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from schedules import _validation as v
from schedules import catalog

FORMATS = (".png", ".svg")


def _add_schedule_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "schedule parameters",
        "Shared by every schedule named; a spec FAMILY:key=value,... overrides them for one schedule.",
    )
    for name, (_kind, default, text) in catalog.PARAMETERS.items():
        option = "--" + name.replace("_", "-")
        shown = "" if default is None else f" (default: {default})"
        group.add_argument(option, dest=name, metavar=name.upper(), default=None, help=f"{text}{shown}")


def _schedule_params(args: argparse.Namespace) -> dict:
    params = {}
    for name in catalog.PARAMETERS:
        text = getattr(args, name, None)
        if text is not None:
            params[name] = catalog.convert(name, text)
    return params


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schedules",
        description="Pruning schedules for the TensorFlow Model Optimization Toolkit. "
        "Without a command, runs `demo` with its defaults.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="families: " + "; ".join(f"{name} ({text})" for name, text in catalog.FAMILIES.items()),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="prune a small CNN on scikit-learn's handwritten digits (the default command)",
        description="Train a small CNN on scikit-learn's 8x8 digits, prune it with the chosen schedule, "
        "print test accuracy before and after and the sparsity of each layer, save, reload and strip the "
        "pruned model, check its predictions, and write the scheduled-against-achieved picture.",
    )
    demo.add_argument(
        "--schedule",
        default="cubic",
        metavar="SPEC",
        help="FAMILY or FAMILY:key=value,... (families: "
        f"{', '.join(catalog.FAMILIES)}); the window defaults to 5%%..70%% of pruning (default: cubic)",
    )
    demo.add_argument("--final-sparsity", type=float, default=0.9, help="final sparsity, in [0, 1) (default: 0.9)")
    demo.add_argument("--dense-epochs", type=int, default=10, help="epochs of dense training (default: 10)")
    demo.add_argument("--prune-epochs", type=int, default=15, help="epochs of pruning (default: 15)")
    demo.add_argument("--output-dir", default="demo-output", help="where files go (default: demo-output)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--quiet", action="store_true", help="no Keras progress bars")

    plot = commands.add_parser(
        "plot",
        help="draw one or more schedules into a PNG or SVG file",
        description="Draw schedules (sparsity per step, a dot at every pruning step) into one picture. "
        "Example: schedules plot cubic cyclic:num_cycles=4 polynomial --final-sparsity 0.9 -o cmp.svg",
    )
    plot.add_argument("specs", nargs="+", metavar="SPEC", help="FAMILY or FAMILY:key=value,... (repeatable)")
    plot.add_argument("-o", "--output", required=True, help="output file, .png or .svg")
    plot.add_argument("--steps", type=int, default=None, help="last step drawn (default: end_step + 10%%)")
    plot.add_argument("--title", default=None, help="picture title")
    _add_schedule_options(plot)

    gallery = commands.add_parser(
        "gallery", help="regenerate the gallery pictures", description="Write one PNG per family and a comparison."
    )
    gallery.add_argument("directory", nargs="?", default="plots", help="output directory (default: plots)")

    quick = commands.add_parser(
        "quickstart",
        help="prune a small CNN on generated data with each family and print the sparsity reached",
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


def _output_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in FORMATS:
        raise v.invalid("--output", "a file name ending in .png or .svg", text)
    if not path.parent.is_dir():
        raise v.invalid("--output", "in an existing directory", text)
    return path


def _prepare_plot(args: argparse.Namespace):
    from schedules.plotting import plot_schedules

    output = _output_path(args.output)
    shared = _schedule_params(args)
    labelled = {}
    for spec in args.specs:
        family, overrides = catalog.parse_spec(spec)
        schedule = catalog.build(family, {**shared, **overrides})
        label = spec if spec not in labelled else f"{spec} ({len(labelled) + 1})"
        labelled[label] = schedule
    if args.steps is None:
        ends = [max(getattr(s, "end_step", -1), getattr(s, "begin_step", 0)) for s in labelled.values()]
        last = max(ends) if max(ends) > 0 else catalog.DEFAULTS["end_step"]
        steps = last + max(10, last // 10)
    else:
        steps = v.check_int("--steps", args.steps, minimum=1, maximum=10**8)

    def job():
        ax = plot_schedules(labelled, steps, title=args.title)
        try:
            ax.figure.savefig(output, dpi=120)
        except OSError as error:
            sys.exit(f"schedules plot: cannot write {output}: {error}")
        print(f"wrote {output}")

    return job


def gallery(directory: str | os.PathLike = "plots") -> list[Path]:
    """Writes one picture per family and a comparison into `directory`."""
    from schedules import ScaledSparsity
    from schedules.plotting import plot_schedule, plot_schedules

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    base = {"initial_sparsity": 0.0, "final_sparsity": 0.9, "begin_step": 100, "end_step": 1000, "frequency": 50}
    pictures = {
        "exponential": {"exponential": {}, "from_rate(0.15), begin_step=0, no end": {"rate": 0.15, "begin_step": 0}},
        "cubic": {"cubic": {}, "tfmot PolynomialDecay(power=3)": {"_family": "polynomial", "_dashed": True}},
        "step": {"step: linear, 4 stages": {}, "step: geometric, 4 stages": {"spacing": "geometric"}},
        "cyclic": {"cyclic: 3 cycles": {"num_cycles": 3}, "cyclic: 5 cycles, power 2": {"num_cycles": 5, "power": 2}},
        "power": {
            "power 3, fast_early (Zhu & Gupta)": {},
            "power 3, fast_late (INC cube)": {"orientation": "fast_late"},
            "power 1/3, fast_late (SparseML inverse_cubic)": {"power": 1 / 3, "orientation": "fast_late"},
            "power 1 (linear)": {"power": 1},
        },
        "cosine": {
            "cosine: s_curve": {},
            "cosine: fast_late (INC cos)": {"shape": "fast_late"},
            "cosine: fast_early": {"shape": "fast_early"},
        },
        "one_cycle": {"one_cycle (alpha 14, beta 6)": {}, "one_cycle (alpha 10, beta 5)": {"alpha": 10, "beta": 5}},
        "alternating": {"alternating: 150 sparse / 150 dense": {"sparse_steps": 150, "dense_steps": 150}},
    }
    written = []
    for family, variants in pictures.items():
        ax = None
        for label, overrides in variants.items():
            overrides = dict(overrides)
            style = {"linestyle": "--", "linewidth": 2.4} if overrides.pop("_dashed", False) else {}
            schedule = catalog.build(overrides.pop("_family", family), {**base, **overrides})
            ax = plot_schedule(schedule, 1100, ax=ax, label=label, **style)
        ax.legend(loc="lower right")
        ax.set_title(f"{family}: sparsity per step, dots at pruning steps")
        path = directory / f"{family}.png"
        ax.figure.savefig(path, dpi=110)
        written.append(path)
    ax = plot_schedule(_composition_example(), 1100, label="cyclic (2 cycles) to 0.8, then cubic to 0.9")
    ax = plot_schedule(
        ScaledSparsity(catalog.build("cubic", base), 0.5), 1100, ax=ax, label="cubic to 0.9, scaled by 0.5"
    )
    ax.legend(loc="lower right")
    ax.set_title("composition: SequentialSparsity and ScaledSparsity")
    path = directory / "composition.png"
    ax.figure.savefig(path, dpi=110)
    written.append(path)
    names = ("exponential", "cubic", "step", "cyclic", "power", "cosine", "one_cycle")
    comparison = {name: catalog.build(name, base) for name in names}
    ax = plot_schedules(comparison, 1100, title="0 -> 0.9 over steps 100..1000, every 50 steps")
    path = directory / "comparison.png"
    ax.figure.savefig(path, dpi=110)
    written.append(path)
    return written


def _composition_example():
    """Two cycles up to 0.8 over steps 100..599, then a cubic finish to 0.9 at step 1000."""
    from schedules import CubicSparsity, CyclicSparsity, SequentialSparsity

    cycles = CyclicSparsity(0.0, 0.8, begin_step=100, end_step=599, num_cycles=2, frequency=50)
    finish = CubicSparsity(0.8, 0.9, begin_step=600, end_step=1000, frequency=50)
    return SequentialSparsity([cycles, finish], boundaries=[600])


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad options)."""
    parser = _parser()
    args = parser.parse_args(argv)
    command = args.command or "demo"
    try:  # validate every option first: a bad one ends in a one-line message and exit status 2
        job = _prepare(command, args)
    except (TypeError, ValueError, OSError) as error:
        parser.error(str(error))
    job()
    return 0


def _prepare(command: str, args: argparse.Namespace):
    """Checks the options of `command` and returns the job to run (errors raise here)."""
    if command == "demo":
        final = v.check_sparsity("--final-sparsity", getattr(args, "final_sparsity", 0.9))
        dense_epochs, prune_epochs = (
            v.check_int(option, getattr(args, name, default), minimum=1, maximum=10_000)
            for option, name, default in (
                ("--dense-epochs", "dense_epochs", 10),
                ("--prune-epochs", "prune_epochs", 15),
            )
        )
        spec = getattr(args, "schedule", "cubic")
        from schedules import demo

        demo.build_schedule(spec, final, prune_epochs)  # the schedule run_demo will build, checked now
        return lambda: demo.run_demo(
            spec,
            final_sparsity=final,
            dense_epochs=dense_epochs,
            prune_epochs=prune_epochs,
            output_dir=getattr(args, "output_dir", "demo-output"),
            seed=getattr(args, "seed", 0),
            verbose=0 if getattr(args, "quiet", False) else 1,
        )
    if command == "plot":
        return _prepare_plot(args)
    if command == "gallery":
        directory = Path(args.directory)
        directory.mkdir(parents=True, exist_ok=True)
        return lambda: [print(f"wrote {path}") for path in gallery(directory)]
    steps = v.check_int("--steps", args.steps, minimum=20, maximum=10**7)
    final = v.check_sparsity("--final-sparsity", args.final_sparsity)
    from schedules import quickstart

    return lambda: quickstart.run(steps=steps, final_sparsity=final, seed=args.seed)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
