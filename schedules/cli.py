"""Command line: `python -m schedules` or the `schedules` console script.

Commands:
  demo        prune a small CNN on scikit-learn's digits (the default command)
  allocate    print the sparsity each layer gets for an overall target (no training)
  plot        draw schedules into a PNG or SVG file
  gallery     regenerate the pictures in plots/
  quickstart  prune a small CNN on generated data with each family, print the sparsity reached
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tf_keras

from schedules import _validation as v
from schedules import catalog, compression, demo, demo_channels, demo_keras3, quickstart
from schedules.allocation import METHODS as ALLOCATION_METHODS
from schedules.allocation import allocate
from schedules.gallery import gallery
from schedules.models import build_cnn
from schedules.plotting import plot_schedules, save_figure
from schedules.rewinding import check_rewind_step
from schedules.saving import load_model

FORMATS = (".png", ".svg")


def _add_schedule_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "schedule parameters",
        "Each applies to the named schedules that take it; a spec FAMILY:key=value,... sets values for one "
        "schedule (lists separated by ';').",
    )
    for parameter in catalog.parameters().values():
        option = "--" + parameter.name.replace("_", "-")
        shown = "" if parameter.default is None else f" (default: {parameter.default})"
        families = "" if len(parameter.families) > 3 else f" [{', '.join(parameter.families)}]"
        text = (parameter.help or parameter.name).replace("%", "%%")
        group.add_argument(option, dest=parameter.name, metavar=parameter.name.upper(), help=f"{text}{families}{shown}")


def _schedule_params(args: argparse.Namespace) -> dict:
    params = {}
    for name, parameter in catalog.parameters().items():
        text = getattr(args, name, None)
        if text is not None:
            params[name] = parameter.convert(text)
    return params


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schedules",
        description="Pruning schedules for the TensorFlow Model Optimization Toolkit. "
        "Without a command, runs `demo` with its defaults.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="families: " + "; ".join(f"{f.name} ({f.summary})" for f in catalog.command_line_families()),
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
        f"{', '.join(f.name for f in catalog.command_line_families())}); the window defaults to 5%%..70%% of "
        "pruning (default: cubic)",
    )
    demo.add_argument(
        "--allocation",
        default="uniform",
        choices=ALLOCATION_METHODS,
        help="how the final sparsity is spread across layers; the overall sparsity is the same (default: uniform)",
    )
    demo.add_argument(
        "--rewind-step",
        type=int,
        default=None,
        metavar="K",
        help="lottery tickets: after every mask change, rewind the weights to those of pruning step K "
        "(schedules.WeightRewinding; K before the first pruning step; default: no rewinding)",
    )
    demo.add_argument(
        "--keras3",
        action="store_true",
        help="build, prune, save and reload the model with Keras 3 (`import keras`) and "
        "schedules.keras3.PruningCallback instead of tf-keras and tfmot",
    )
    demo.add_argument(
        "--backend",
        choices=demo_keras3.BACKENDS,
        default=None,
        help="with --keras3: the Keras backend (default: KERAS_BACKEND, else tensorflow); the demo runs again in a "
        "new process with KERAS_BACKEND set when it differs from this one's",
    )
    demo.add_argument(
        "--pattern",
        default=None,
        metavar="M:N|RxC",
        help="with --keras3: prune in a pattern, M:N for M zeros in every N weights along the inputs (the final "
        "sparsity is then M/N), RxC for blocks of R rows by C columns of the Dense kernels (default: unstructured)",
    )
    demo.add_argument(
        "--channels",
        action="store_true",
        help="prune whole channels (schedules.ChannelPruning), shrink the model to the channels kept "
        "(schedules.channels.shrink) and time both in TFLite; with --keras3 on Keras 3",
    )
    demo.add_argument(
        "--final-sparsity",
        type=float,
        default=None,
        help="final sparsity, in [0, 1) (default: 0.9; M/N with M:N; 0.5 of the channels with --channels)",
    )
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

    share = commands.add_parser(
        "allocate",
        help="print the sparsity each layer gets for an overall target, without training",
        description="Print the per-layer sparsities an allocation method gives a saved tf-keras model (or, "
        "without MODEL, the demo's CNN) for an overall sparsity: zeros over every weight tfmot would prune.",
    )
    share.add_argument("model", nargs="?", default=None, help="a saved model (.keras, .h5, SavedModel directory)")
    share.add_argument("--target", type=float, default=0.98, help="overall sparsity, in [0, 1) (default: 0.98)")
    share.add_argument(
        "--method",
        default="erk",
        choices=[m for m in ALLOCATION_METHODS if m != "sensitivity"],
        help="allocation method (default: erk; 'sensitivity' needs data: use schedules.allocate)",
    )
    share.add_argument("--keep-dense", action="append", default=[], metavar="LAYER", help="a layer to leave dense")
    share.add_argument("--max-sparsity", type=float, default=None, help="the most any layer is pruned")
    share.add_argument("--min-weights", type=int, default=1, help="the fewest weights any layer keeps (default: 1)")

    report = commands.add_parser(
        "report",
        help="print what pruning saved: zeros per layer and file sizes, raw and compressed",
        description="Print, for a saved pruned model, each pruned layer's weights, zeros and sparsity, the "
        "overall sparsity, and the size of the stripped model as .keras and .h5 files, as written and "
        "zipped as tfmot's pruning guide measures them (and .tflite, plain, sparse, int8 and int8 sparse, with "
        "--tflite), next to the dense model's with --dense. Progress goes to stderr.",
    )
    report.add_argument("model", help="a saved pruned model (.keras, .h5, SavedModel directory; Keras 3 .keras too)")
    report.add_argument("--dense", default=None, metavar="MODEL", help="the dense model, for comparison")
    report.add_argument("--tflite", action="store_true", help="also convert to TFLite (a few seconds each form)")

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


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _prepare_plot(args: argparse.Namespace):
    output = _output_path(args.output)
    shared = _schedule_params(args)
    labelled: dict[str, Any] = {}
    parsed = [catalog.parse_spec(spec) for spec in args.specs]
    for name in shared:
        takers = catalog.parameters()[name].families
        if not any(family in takers for family, _ in parsed):
            raise ValueError(
                f"Parameter `{name}` is taken by none of the schedules named ({', '.join(f for f, _ in parsed)}); "
                f"it is a parameter of {', '.join(takers)}"
            )
    for spec, (family, overrides) in zip(args.specs, parsed, strict=True):
        schedule = catalog.build(family, overrides, shared=shared)
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
            save_figure(ax, output, dpi=120)
        except OSError as error:
            sys.exit(f"schedules plot: cannot write {output}: {error}")
        print(f"wrote {output}")

    return job


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad options, 1 for the demo without scikit-learn)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the demo on another Keras backend
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
        if not demo.has_scikit_learn():  # one line saying what to install, exit status 1
            sys.exit(f"schedules demo {demo.NEEDS_SCIKIT_LEARN}")
        pattern = getattr(args, "pattern", None)
        backend = getattr(args, "backend", None)
        keras3 = getattr(args, "keras3", False)
        for option, value in (("--pattern", pattern), ("--backend", backend)):
            if value is not None and not keras3:
                raise ValueError(f"{option} is for Keras 3 models: add --keras3")
        pattern_args = demo_keras3.parse_pattern(pattern)
        final = getattr(args, "final_sparsity", None)
        channels = getattr(args, "channels", False)
        if channels:
            for option, given in (
                ("--pattern", pattern is not None),
                ("--rewind-step", getattr(args, "rewind_step", None) is not None),
            ):
                if given:
                    raise ValueError(f"{option} is for weight pruning; leave it out with --channels")
            if getattr(args, "allocation", "uniform") != "uniform":
                raise ValueError("--allocation uniform with --channels: ERK and LAMP rank weights, not channels")
            final = 0.5 if final is None else final
        if "sparsity_m_by_n" in pattern_args:
            m, n = pattern_args["sparsity_m_by_n"]
            if final is not None and final != m / n:
                raise ValueError(f"--final-sparsity {final} with --pattern {pattern}: an M:N pattern prunes to M/N")
            if getattr(args, "allocation", "uniform") != "uniform":
                raise ValueError(f"--allocation uniform with --pattern {pattern}: every layer is pruned to M/N")
            final = m / n
        final = v.check_sparsity("--final-sparsity", 0.9 if final is None else final)
        dense_epochs, prune_epochs = (
            v.check_int(option, getattr(args, name, default), minimum=1, maximum=10_000)
            for option, name, default in (
                ("--dense-epochs", "dense_epochs", 10),
                ("--prune-epochs", "prune_epochs", 15),
            )
        )
        spec = getattr(args, "schedule", "cubic")
        schedule = demo.build_schedule(spec, final, prune_epochs)  # the schedule run_demo will build, checked now
        rewind_step = getattr(args, "rewind_step", None)
        if rewind_step is not None:
            check_rewind_step(rewind_step, schedule, name="--rewind-step")
        options: dict[str, Any] = {
            "allocation": getattr(args, "allocation", "uniform"),
            "final_sparsity": final,
            "dense_epochs": dense_epochs,
            "prune_epochs": prune_epochs,
            "output_dir": getattr(args, "output_dir", "demo-output"),
            "seed": getattr(args, "seed", 0),
            "verbose": 0 if getattr(args, "quiet", False) else 1,
        }
        if keras3 and backend is not None and backend != demo_keras3.keras.backend.backend():
            return demo_keras3.rerun_with_backend(backend, args.argv)  # every option again, on that backend
        if channels:
            module = demo_keras3.keras if keras3 else demo.keras
            options.pop("allocation")
            return lambda: demo_channels.run_channels_demo(module, spec, **options)
        if keras3:
            return lambda: demo_keras3.run_keras3_demo(spec, pattern=pattern_args, rewind_step=rewind_step, **options)
        return lambda: demo.run_demo(spec, rewind_step=rewind_step, **options)
    if command == "plot":
        return _prepare_plot(args)
    if command == "allocate":
        return _prepare_allocate(args)
    if command == "report":  # the files are checked here (exit status 2); the measuring is the job
        progress = _stderr
        progress(f"loading {args.model}")
        stripped, report = compression.strip_checked(compression.as_model(args.model, "MODEL"), "MODEL")
        if args.dense is not None:
            progress(f"loading {args.dense}")
        dense = None if args.dense is None else compression.as_model(args.dense, "--dense")
        return lambda: print(compression.measure(stripped, report, dense, tflite=args.tflite, progress=progress))
    if command == "gallery":
        directory = Path(args.directory)
        directory.mkdir(parents=True, exist_ok=True)
        return lambda: [print(f"wrote {path}") for path in gallery(directory)]
    steps = v.check_int("--steps", args.steps, minimum=20, maximum=10**7)
    final = v.check_sparsity("--final-sparsity", args.final_sparsity)
    return lambda: quickstart.run(steps=steps, final_sparsity=final, seed=args.seed)


def _prepare_allocate(args: argparse.Namespace):
    if args.model is None:
        model = build_cnn(tf_keras)
    else:
        if not Path(args.model).exists():
            raise ValueError(f"Argument `model` must be a saved model. Received: model={args.model!r} (no such file)")
        model = load_model(args.model)
    allocation = allocate(
        model,
        args.target,
        args.method,
        keep_dense=args.keep_dense,
        max_sparsity=args.max_sparsity,
        min_weights=args.min_weights,
    )
    return lambda: print(allocation)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
