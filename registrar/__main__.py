"""``python -m registrar``: the command line for admins and developers."""

from __future__ import annotations

import argparse
import sys

from . import demo, intake_cli, partner_cli, pipeline_cli, samples
from .emulators.graph import server as graph_emulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m registrar", description="Autopilot Registrar tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    intake_cli.register(sub)
    samples.register(sub)
    demo.register(sub)
    pipeline_cli.register(sub)
    partner_cli.register(sub)
    graph_emulator.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
