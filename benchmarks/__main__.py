"""Run the benchmarks: `python -m benchmarks [--quick] [--only NAME ...] [--seeds N] [--json PATH]`."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time

SECTIONS = (
    "overhead",
    "cost",
    "curve",
    "quality",
    "allocation",
    "lottery",
    "keras3",
    "zoo",
    "zoo-accuracy",
    "patterns",
    "channel-accuracy",
    "channels",
)
#: Sections that train on the demo's digits (scikit-learn), over seeds.
ON_DIGITS = ("quality", "allocation", "lottery", "zoo-accuracy", "patterns", "channel-accuracy")

TITLES = {
    "overhead": "Training overhead (median ratio of step time to PolynomialDecay, interleaved rounds)",
    "cost": "Schedule cost (one call with an int64 scalar step)",
    "curve": "Curve evaluation (one vectorized call vs a per-step tf.function loop)",
    "quality": "Quality: test accuracy on scikit-learn digits (mean ± std over seeds)",
    "allocation": "Allocation: test accuracy at overall sparsity by per-layer allocation (mean ± std; overall reached)",
    "lottery": "Lottery tickets: IMP with and without weight rewinding, global_magnitude allocation (mean ± std)",
    "keras3": "Keras 3: PruningCallback's step time against unpruned Keras 3 and tfmot on the tf-keras twin",
    "zoo": "Real architectures: a pruning event and a fit, Keras 3 PruningCallback against tfmot",
    "zoo-accuracy": "Real architecture accuracy: MobileNetV2 on the digits at 32x32, by allocation (mean ± std)",
    "patterns": "Keras 3 patterns: 2:4 (gradual, one-shot) against unstructured 50% on the digits (mean ± std)",
    "channel-accuracy": "Channel pruning against unstructured pruning at 25% and 50% on the digits (mean ± std)",
    "channels": "Channel pruning's speed: shrunk models against dense and unstructured 50% in TFLite (1 thread)",
}


def _cpu_model() -> str:
    """The CPU's model name, family, model and stepping (from /proc/cpuinfo where there is one):
    machines of one kind differ, and some name only the vendor's line ("AMD EPYC")."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor()
    ids = ", ".join(f"{key} {fields[key]}" for key in ("cpu family", "model", "stepping") if key in fields)
    name = fields.get("model name", platform.processor())
    return f"{name} ({ids})" if ids else name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: seconds, to check the harness works")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        metavar="N",
        help="seeds 0..N-1 for the sections on the digits (" + ", ".join(ON_DIGITS) + "; default: 5, "
        "3 for zoo-accuracy, patterns and channel-accuracy)",
    )
    parser.add_argument(
        "--json",
        default=None,
        metavar="PATH",
        help="where to write the results as JSON (default: benchmarks/results/latest.json, "
        "or benchmarks/results/quick.json with --quick)",
    )
    args = parser.parse_args(argv)
    on_digits = [section for section in args.only if section in ON_DIGITS]
    if on_digits:
        from schedules.demo import NEEDS_SCIKIT_LEARN, has_scikit_learn

        if not has_scikit_learn():  # one line saying what to install, exit status 1
            sys.exit(f"python -m benchmarks ({on_digits[0]}) {NEEDS_SCIKIT_LEARN}")
    if args.json is None:
        results_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
        os.makedirs(results_dir, exist_ok=True)
        args.json = os.path.join(results_dir, "quick.json" if args.quick else "latest.json")

    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    # Sections not run now keep their earlier results (each section records how it was made).
    results = {}
    if os.path.exists(args.json):
        with open(args.json, encoding="utf-8") as f:
            results = json.load(f)
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    machine = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tfmot": tfmot.__version__,
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
    }
    for section in args.only:
        start = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{section.replace('-', '_')}")
        options = {"seeds": tuple(range(args.seeds))} if args.seeds and section in ON_DIGITS else {}
        rows = module.run(quick=args.quick, **options)
        print(f"\n## {TITLES[section]}")
        print(module.format_rows(rows))
        seconds = time.perf_counter() - start
        results[section] = {
            "title": TITLES[section],
            "command": command.strip(),
            "quick": args.quick,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": round(seconds, 1),
            "machine": machine,
            "rows": rows,
        }
        print(f"({section}: {seconds:.1f} s)")
        with open(args.json, "w", encoding="utf-8") as f:  # after every section: nothing lost if stopped
            json.dump(results, f, indent=1)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
