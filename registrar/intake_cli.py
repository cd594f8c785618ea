"""``validate`` and ``merge``: the intake core on local files, replacing the hand-merge one-liner."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared.intake import DeviceRow, FileRejected, Rejection, open_devices
from shared.intake.merge import Merger, MergeResult
from shared.intake.portal import PORTAL_MAX_ROWS, write_rows

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
_INVOCATION_CODES = {"file.binary", "file.zip"}


class InvocationError(Exception):
    """A file that cannot be used at all: missing, unreadable, or not text. One line, exit 2."""


@dataclass(slots=True)
class FileSummary:
    file: str
    encoding: str = ""
    rows: int = 0
    error: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "encoding": self.encoding, "rows": self.rows, "error": self.error or None}


@dataclass(slots=True)
class Intake:
    files: list[FileSummary] = field(default_factory=list)
    invocation_errors: list[str] = field(default_factory=list)
    merge: MergeResult | None = None


def _rows(path: str, summary: FileSummary | None = None) -> Iterator[DeviceRow | Rejection]:
    """Every row outcome of one file. File-level problems become one rejection (line 0), except the
    ones that mean the file is not a CSV at all, which raise :class:`InvocationError`."""
    try:
        with open(path, "rb") as stream:
            try:
                opened = open_devices(stream, path)
            except FileRejected as error:
                if error.code in _INVOCATION_CODES:
                    raise InvocationError(f"{path}: {error.reason}") from None
                if summary:
                    summary.error = error.reason
                yield error.as_rejection()
                return
            if summary:
                summary.encoding = opened.encoding.label
            for outcome in opened:
                if summary:
                    summary.rows += 1
                yield outcome
    except OSError as error:
        raise InvocationError(f"{path}: cannot read the file ({error.strerror or error})") from None


def run_intake(paths: list[str]) -> Intake:
    intake = Intake()
    merger = Merger()
    for path in paths:
        summary = FileSummary(path)
        try:
            for outcome in _rows(path, summary):
                merger.add(outcome)
        except InvocationError as error:
            intake.invocation_errors.append(str(error))
            summary.error = str(error)
        intake.files.append(summary)
    intake.merge = merger.result()
    return intake


def _exit_code(intake: Intake) -> int:
    if intake.invocation_errors:
        return EXIT_USAGE
    assert intake.merge is not None
    return EXIT_REJECTED if intake.merge.rejected else EXIT_OK


def _report_json(intake: Intake) -> dict[str, object]:
    assert intake.merge is not None
    return {
        "files": [f.as_dict() for f in intake.files],
        "accepted": [{"serial": r.serial, "file": r.file, "line": r.line} for r in intake.merge.accepted],
        "duplicates": [d.as_dict() for d in intake.merge.duplicates],
        "rejected": [r.as_dict() for r in intake.merge.rejected],
    }


def _print_table(intake: Intake) -> None:
    assert intake.merge is not None
    result = intake.merge
    rows: list[tuple[str, str, str, str, str]] = []
    rows += [("accepted", r.file, str(r.line), r.serial, "") for r in result.accepted]
    rows += [
        ("duplicate", d.ref.file, str(d.ref.line), d.ref.serial, f"same device as {d.kept.file} line {d.kept.line}")
        for d in result.duplicates
    ]
    rows += [("rejected", r.file, str(r.line), r.serial, f"[{r.code}] {r.message}") for r in result.rejected]
    headings = ("OUTCOME", "FILE", "LINE", "SERIAL", "REASON")
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headings[:4])]
    out = sys.stdout
    out.write("  ".join(h.ljust(w) for h, w in zip(headings, widths)) + "  " + headings[4] + "\n")
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4] + "\n")
    out.write(
        f"\n{len(result.accepted)} accepted, {len(result.duplicates)} duplicate, {len(result.rejected)} rejected"
        f" ({result.total} rows in {len(intake.files)} file(s))\n"
    )
    for summary in intake.files:
        if not summary.error and summary.rows == 0:
            out.write(f"note: {summary.file} has a header but no device rows\n")


def _print_invocation_errors(intake: Intake) -> None:
    for message in intake.invocation_errors:
        print(f"registrar: {message}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    intake = run_intake(args.files)
    _print_invocation_errors(intake)
    if args.json:
        json.dump(_report_json(intake), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_table(intake)
    return _exit_code(intake)


def cmd_merge(args: argparse.Namespace) -> int:
    if args.chunk < 1:
        print("registrar: --chunk must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    intake = run_intake(args.files)
    _print_invocation_errors(intake)
    if intake.invocation_errors:
        return EXIT_USAGE
    assert intake.merge is not None
    keep = {(r.file, r.line) for r in intake.merge.accepted}
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)

    def accepted_rows() -> Iterator[DeviceRow]:  # second pass: stream the files again, write the keepers
        for path in args.files:
            for outcome in _rows(path):
                if isinstance(outcome, DeviceRow) and (outcome.file, outcome.line) in keep:
                    yield outcome

    hashes, tuples = write_rows(accepted_rows(), out, args.chunk)
    result = intake.merge
    print(
        f"merged {result.total} rows from {len(args.files)} file(s): {len(result.accepted)} accepted, "
        f"{len(result.duplicates)} duplicate, {len(result.rejected)} rejected"
    )
    for writer, what in ((hashes, "hardware-hash rows"), (tuples, "partner tuple rows (no hash)")):
        if writer.paths:
            print(
                f"wrote {writer.rows} {what} to {len(writer.paths)} file(s): " + ", ".join(str(p) for p in writer.paths)
            )
    for rejection in result.rejected:
        print(f"rejected: [{rejection.code}] {rejection.message}")
    return _exit_code(intake)


def register(sub: argparse._SubParsersAction) -> None:
    validate = sub.add_parser("validate", help="check CSV files and report accepted, duplicate and rejected rows")
    validate.add_argument("files", nargs="+", metavar="FILE", help="CSV files (any encoding PowerShell or Excel writes)")
    validate.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    validate.set_defaults(handler=cmd_validate)
    merge = sub.add_parser("merge", help="merge CSV files into Intune-portal-valid files of at most --chunk rows")
    merge.add_argument("files", nargs="+", metavar="FILE", help="CSV files to merge and de-duplicate")
    merge.add_argument(
        "-o", "--output", required=True, metavar="OUT.csv", help="base name: OUT-001.csv, OUT-002.csv, ..."
    )
    merge.add_argument("--chunk", type=int, default=PORTAL_MAX_ROWS, help="rows per output file (default 500)")
    merge.set_defaults(handler=cmd_merge)
