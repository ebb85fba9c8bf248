"""Command line: score bring-your-own activations on a benchmark; fetch catalog data by name.

    python -m jaxbrain score --activations acts.npz --assembly data.nc \\
        --benchmark MajajHong2015.IT-pls --out scores.json
    python -m jaxbrain fetch --list
    python -m jaxbrain fetch MajajHong2015.public hvm-public resnet50.IMAGENET1K_V1

``acts.npz`` holds one array per layer (first axis = stimuli, any trailing shape) and a
``stimulus_id`` array giving the row order.  Bad input prints one clear error and exits
with status 2; ``--out`` is written atomically, only when everything succeeded.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

import jaxbrain
from jaxbrain.benchmarks import CONVENTIONS, layer_results, load
from jaxbrain.benchmarks.neural import MAPPINGS
from jaxbrain.data import fetch, load_catalog
from jaxbrain.data.fetch import cached_where, present_size
from jaxbrain.files import WriteError, atomic_write, check_writable_file, json_bytes


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jaxbrain", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score activations on a benchmark")
    score.add_argument("--activations", required=True, type=Path,
                       help=".npz: one array per layer plus 'stimulus_id'")
    score.add_argument("--assembly",
                       help="Brain-Score NetCDF (.nc) path, or a catalog assembly name "
                            "(default: the benchmark's own, e.g. MajajHong2015.public)")
    score.add_argument("--lamem", help="LaMem-layout folder (memorability benchmarks; default: "
                                       "the benchmark's own)")
    score.add_argument("--fmri", help="folder of fmri_<subject>.nc recordings (decoding "
                                      "benchmarks)")
    score.add_argument("--group", help="NetCDF group holding the assembly (default: root)")
    score.add_argument("--benchmark", required=True, help="e.g. MajajHong2015.IT-pls")
    score.add_argument("--out", required=True, type=Path, help="JSON file to write")
    overrides = score.add_argument_group("overrides of the benchmark's definition")
    overrides.add_argument("--region")
    overrides.add_argument("--time-window", nargs=2, type=float, metavar=("START_MS", "END_MS"))
    overrides.add_argument("--stratification", help="presentation coordinate, or 'none'")
    overrides.add_argument("--splits", type=int)
    overrides.add_argument("--train-fraction", type=float)
    overrides.add_argument("--seed", type=int)
    overrides.add_argument("--mapping", choices=list(MAPPINGS))
    overrides.add_argument("--components", type=int, help="PLS components")
    overrides.add_argument(
        "--pls-weights", choices=["sklearn", "exact"],
        help="sklearn: replay scikit-learn's power iteration (Brain-Score's numbers, default); "
             "exact: exact singular vectors",
    )
    overrides.add_argument(
        "--convention", choices=sorted(CONVENTIONS),
        help="ceiled score: v4 raw^2/ceiling, v3 (raw/ceiling)^2, v1 raw/ceiling",
    )
    overrides.add_argument("--no-ceiling", action="store_true", help="raw scores only")
    score.add_argument("--catalog", help="user catalog JSON (default: $JAXBRAIN_CATALOG)")

    fetch = commands.add_parser(
        "fetch", help="download, verify and cache catalog entries by name",
        description="Fetch catalog entries (Brain-Score data, torchvision weights, your own) "
                    "into $JAXBRAIN_HOME, or list them.")
    fetch.add_argument("names", nargs="*", help="catalog identifiers")
    fetch.add_argument("--list", action="store_true",
                       help="list every entry: identifier, kind, size, access, cached")
    fetch.add_argument("--catalog", help="user catalog JSON (default: $JAXBRAIN_CATALOG)")
    return parser


def _load_activations(path: Path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ValueError(f"{path}: no such activations file") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: cannot read as .npz: {err}") from err
    except ValueError as err:  # object arrays need pickle, which is never enabled
        raise ValueError(
            f"{path}: {err} (store stimulus_id as a string array, e.g. np.asarray(ids, str))"
        ) from err
    if "stimulus_id" not in arrays:
        raise ValueError(f"{path}: no 'stimulus_id' array (arrays: {sorted(arrays)})")
    ids = arrays.pop("stimulus_id")
    if ids.ndim != 1:
        raise ValueError(f"{path}: 'stimulus_id' must be 1-D (one id per row), got shape "
                         f"{ids.shape}")
    if not arrays:
        raise ValueError(f"{path}: no layer arrays besides 'stimulus_id'")
    return arrays, ids


def _score(args) -> dict:
    options = {
        "region": args.region,
        "time_window_ms": tuple(args.time_window) if args.time_window else None,
        "n_splits": args.splits,
        "train_size": args.train_fraction,
        "seed": args.seed,
        "mapping": args.mapping,
        "n_components": args.components,
        "pls_weights": args.pls_weights,
        "convention": args.convention,
    }
    changes = {name: value for name, value in options.items() if value is not None}
    if args.stratification:
        changes["stratification_coord"] = (
            None if args.stratification == "none" else args.stratification
        )
    if args.no_ceiling:
        changes["ceiling"] = None
    if args.group:
        changes["assembly_group"] = args.group
    benchmark = load(args.benchmark).with_overrides(**changes)
    benchmark = benchmark.with_data(assembly=args.assembly, lamem=args.lamem, fmri=args.fmri)
    layers, ids = _load_activations(args.activations)
    prepared = benchmark.prepare(catalog=args.catalog)
    result = layer_results(prepared, benchmark.score(prepared, layers, ids, filenames=ids))
    result["jaxbrain_version"] = jaxbrain.__version__
    result["null_values"] = ("null marks an undefined number (NaN), e.g. the Pearson r of a "
                             "neuroid whose responses or predictions are constant; such "
                             "neuroids are counted in nan_neuroids and left out of medians")
    dtypes = sorted({str(v.dtype) for v in layers.values()})
    if any(d in ("float16", "bfloat16") or not d.startswith("float") for d in dtypes):
        result["computed_in"] = (f"activations of dtype {', '.join(dtypes)} were scored in "
                                 "float32")
    result["inputs"] = {"activations": str(args.activations), "data": prepared.source}
    return result


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def _fetch(args) -> int:
    catalog = load_catalog(args.catalog)
    if args.list:
        rows = [("identifier", "kind", "size", "access", "cached")]
        rows += [(e.identifier, e.kind, _size(present_size(e)), e.access, cached_where(e))
                 for e in catalog]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        return 0
    if not args.names:
        raise ValueError("name the entries to fetch, or --list them")
    for name in args.names:
        for role, path in fetch(name, catalog).items():
            print(f"{name}\t{role}\t{path}")
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "fetch":
            return _fetch(args)
        check_writable_file(args.out)  # before the work, not after
        result = _score(args)
        atomic_write(args.out, json_bytes(result, indent=2))
    except (ValueError, WriteError) as err:
        print(f"jaxbrain: error: {err}", file=sys.stderr)
        return 2
    for name, scores in result["layers"].items():
        if "raw" not in scores:
            print(f"{name}: {scores['status']}")
            continue
        ceiled = ""
        if "ceiled" in scores:
            ceiled = f"  ceiled({scores['convention']}) {scores['ceiled']:.4f}"
        print(f"{name}: raw {scores['raw']:.4f} ± {scores['error']:.4f}{ceiled}")
    return 0
