"""The bundled sample uploads, made of synthetic hashes (``python -m registrar samples`` rewrites them).

They cover what admins and partners really send: a quoted PowerShell 7 export, a UTF-16 PowerShell 5.1
export with duplicates, a truncated hash and a conflicting re-capture, a European Excel file (``;``, BOM)
with an unpadded hash, a wrong serial and a bad user, and a partner's ANSI file with a row that tries to
choose another profile's group tag. The layout mirrors the storage containers:
``uploads/<profile>/`` -> ``device-uploads``, ``partners/<id>/<profile>/`` -> ``partner-<id>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .synthetic import PORTAL_HEADER, build_hash

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# A serial the Graph emulator seeds as owned by another organisation (808), and one already registered (806).
OTHER_ORG_SERIAL = "PF-OTHERORG-01"
ALREADY_REGISTERED_SERIAL = "PF000012"


def _device(n: int, model: int = 0) -> tuple[str, str]:
    makes = [("Contoso Devices", "Surfboard Laptop 7"), ("Fabrikam Inc.", "ProBook 450 G10")]
    serial = f"PF{n:06d}"
    return serial, build_hash(serial, *makes[model % 2])


def _quoted(cells: list[str]) -> str:
    return ",".join(f'"{c}"' for c in cells)


def write_samples(root: Path = SAMPLES) -> list[Path]:
    written: list[Path] = []

    def put(relative: str, text: str, encoding: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode(encoding))
        written.append(path)

    # 1. PowerShell 7 Export-Csv: UTF-8 without BOM, every field quoted, CRLF.
    lines = [_quoted(PORTAL_HEADER)]
    for n in range(1, 7):
        serial, hw = _device(n, n)
        lines.append(_quoted([serial, "", hw, "", ""]))
    other = build_hash(OTHER_ORG_SERIAL, "Contoso Devices", "Surfboard Laptop 7")
    lines.append(_quoted([OTHER_ORG_SERIAL, "", other, "", ""]))
    put("uploads/standard/batch-1.csv", "\r\n".join(lines) + "\r\n", "utf-8")

    # 2. PowerShell 5.1 Out-File: UTF-16 LE with BOM; two rows repeat batch 1, one hash is cut off,
    #    and PF000006 was re-captured with a different hash (a conflict: both copies are held back).
    lines = [",".join(PORTAL_HEADER)]
    for n in (5, 7, 8, 9):
        serial, hw = _device(n, n)
        lines.append(",".join([serial, "", hw, "", ""]))
    lines.append(",".join(["PF000004", "", _device(4, 4)[1], "", ""]))
    lines.append(",".join(["PF000010", "", _device(10)[1][:600], "", ""]))
    lines.append(",".join(["PF000006", "", build_hash("PF000006", seed=99), "", ""]))
    put("uploads/standard/batch-2-ps51.csv", "\r\n".join(lines) + "\r\n", "utf-16")

    # 3. European Excel: ';' delimiter, UTF-8 BOM, other header spellings.
    lines = ["SerialNumber;HardwareHash;GroupTag;AssignedUser"]
    s11, h11 = _device(11)
    lines.append(f"{s11};{h11.rstrip('=')};;alex@contoso.com")
    s12, h12 = _device(12)
    lines.append(f"{s12};{h12};;")
    lines.append(f"PF000099;{_device(13)[1]};;")  # serial typed by hand: the hash is PF000013's
    s14, h14 = _device(14)
    lines.append(f"{s14};{h14};;not-an-email")
    put("uploads/kiosk/europe-excel.csv", "\r\n".join(lines) + "\r\n", "utf-8-sig")

    # 4. A partner's file in ANSI (Windows-1252), one row trying to pick another profile's group tag.
    lines = [",".join(PORTAL_HEADER)]
    for n in (201, 202, 203):
        serial, hw = _device(n, n)
        lines.append(",".join([serial, "", hw, "", ""]))
    serial, hw = _device(204)
    lines.append(",".join([serial, "", hw, "Kiosk", "rene@contoso.com"]))
    put("partners/contoso/standard/delivery-0042.csv", "\r\n".join(lines) + "\r\n", "cp1252")
    return written


def cmd_samples(args: argparse.Namespace) -> int:
    for path in write_samples(Path(args.output)):
        print(path)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("samples", help="write the bundled synthetic sample CSVs")
    parser.add_argument("--output", default=str(SAMPLES), help="directory to write them to (default samples/)")
    parser.set_defaults(handler=cmd_samples)
