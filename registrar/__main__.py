"""``python -m registrar``: the command line for admins and developers."""

from __future__ import annotations

import argparse
import importlib
import sys

# Which module defines each command, in --help order. A command imports only its own module: `validate`
# of a 400 MB file must not carry the Graph SDK and the local host (about 70 MB) it never uses.
MODULES = {
    "validate": "intake_cli",
    "merge": "intake_cli",
    "samples": "samples",
    "demo": "demo",
    "dev": "pipeline_cli",
    "upload": "pipeline_cli",
    "status": "pipeline_cli",
    "retry": "pipeline_cli",
    "partner": "partner_cli",
    "graph-emulator": "emulators.graph.server",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m registrar", description="Autopilot Registrar tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = [MODULES[command]] if command in MODULES else list(dict.fromkeys(MODULES.values()))
    for name in wanted:
        importlib.import_module(f"{__package__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
