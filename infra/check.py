"""Offline validation of the Bicep templates (no Azure access): every file parses with pycep-parser (the
parser checkov uses), and checkov's Bicep checks pass with zero failures (skips are justified inline).

Runs in its own virtual environment (.venv-infra, requirements-infra.txt) so checkov's dependencies never
change the app's pinned ones. Exit code 0 only when both hold.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pycep import BicepParser

INFRA = Path(__file__).resolve().parent


def main() -> int:
    parser = BicepParser()
    failures = 0
    files = sorted(INFRA.rglob("*.bicep"))
    for path in files:
        try:
            parser.parse(text=path.read_text())
        except Exception as error:  # noqa: BLE001 - report every file, then fail
            failures += 1
            print(f"FAIL parse {path.relative_to(INFRA.parent)}: {type(error).__name__}: {str(error)[:300]}")
    print(f"pycep-parser: {len(files) - failures} of {len(files)} Bicep files parse")
    checkov = Path(sys.executable).with_name("checkov")
    result = subprocess.run(  # noqa: S603 - fixed argv
        [str(checkov), "--framework", "bicep", "-d", str(INFRA), "--compact", "--quiet", "--skip-download"],
        capture_output=True,
        text=True,
        check=False,
    )
    summary = [line for line in result.stdout.splitlines() if line.strip()]
    print("\n".join(summary[-40:]))
    if result.returncode != 0 or failures:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
