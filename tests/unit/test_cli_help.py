"""The README's command-line section matches ``--help``: every command and every option is documented
there, and every option explains itself in ``--help``."""

from __future__ import annotations

import argparse
from pathlib import Path

from registrar.__main__ import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                path = f"{prefix} {name}".strip()
                nested = _commands(child, path)
                found.update(nested or {path: child})
    return found


def _cli_section() -> str:
    text = README.read_text()
    start = text.index("## Command line")
    return text[start : text.index("\n## ", start + 1)]


def test_every_command_and_option_is_in_the_readme():
    section = _cli_section()
    commands = _commands(build_parser())
    assert {"dev", "upload", "status", "retry", "partner add", "partner remove", "graph-emulator"} <= set(commands)
    missing = []
    for path, parser in commands.items():
        if f"`{path}" not in section:
            missing.append(path)
        for action in parser._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and option not in section:
                    missing.append(f"{path} {option}")
    assert missing == []


def test_every_option_has_help_text():
    undocumented = [
        f"{path} {action.option_strings or action.dest}"
        for path, parser in _commands(build_parser()).items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert undocumented == []
