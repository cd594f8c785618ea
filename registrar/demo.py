"""``make demo``: the main job on the bundled samples.

Until the registration pipeline lands this runs intake only: validate every sample upload, then merge
the accepted devices into Intune-portal-valid files under ``build/demo``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import intake_cli
from .samples import SAMPLES


def cmd_demo(args: argparse.Namespace) -> int:
    files = sorted(
        str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p) for p in SAMPLES.rglob("*.csv")
    )
    print(f"== validating {len(files)} sample uploads\n")
    code = intake_cli.cmd_validate(argparse.Namespace(files=files, json=False))
    out = Path(args.output) / "merged.csv"
    print(f"\n== merging accepted devices into {out.parent}/ (portal format, {args.chunk} rows per file)\n")
    intake_cli.cmd_merge(argparse.Namespace(files=files, output=str(out), chunk=args.chunk))
    print("\nRejected rows are listed with file, line, field and reason; the merged files are ready for the portal.")
    return 0 if code in (intake_cli.EXIT_OK, intake_cli.EXIT_REJECTED) else code


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the main job on the bundled samples")
    parser.add_argument("--output", default="build/demo")
    parser.add_argument("--chunk", type=int, default=5)
    parser.set_defaults(handler=cmd_demo)
