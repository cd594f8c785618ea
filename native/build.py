"""Builds ``shared/intake/_hwwalk`` (the hardware hash's record walk in C) next to the module that uses it.

Optional by design: without a C compiler, intake uses the same walk in Python (``_walk_python`` in
``shared/intake/hwhash.py``, about 3 us a row slower) and gives the same answers, so a build failure is
reported and does not stop ``make setup``. Run from anywhere: ``python native/build.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = ROOT / "build" / "native" / ".built-stamp"  # make's target: written only when the build worked


def main() -> int:
    os.chdir(ROOT)
    from setuptools import Distribution, Extension

    extension = Extension("shared.intake._hwwalk", ["native/hwwalk.c"], extra_compile_args=["-O2"])
    distribution = Distribution({"name": "registrar-hwwalk", "ext_modules": [extension]})
    command = distribution.get_command_obj("build_ext")
    command.inplace = True
    command.build_temp = str(ROOT / "build" / "native")
    command.build_lib = str(ROOT / "build" / "native")
    try:
        distribution.run_command("build_ext")
    except Exception as error:  # CompileError, a missing compiler or headers: the Python walk stands in
        for stale in (ROOT / "shared" / "intake").glob("_hwwalk*.so"):  # an older build would be imported
            stale.unlink()
        STAMP.unlink(missing_ok=True)
        print(f"native/build.py: the compiled hash walk was not built ({error}); intake uses the Python walk",
              file=sys.stderr)
        return 0
    STAMP.parent.mkdir(parents=True, exist_ok=True)
    STAMP.touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
