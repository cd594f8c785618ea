"""Derive the compact v1.0 schema table the Graph emulator checks requests against.

Source: Microsoft's published Graph v1.0 ``$metadata`` (CSDL), file ``clean_v10_metadata/cleanMetadata.xml``
of github.com/microsoftgraph/msgraph-metadata, commit f54f11b6 (August 2026), kept by the maintainers
as ``../shared/reference/graph-metadata/v1.0-csdl.xml`` beside the checkout. The emulator never reads
that 3.5 MB file: this script writes ``v1_0.json`` (committed) with only what the product and emulator
use: the top-level paths, the navigation properties and bound actions under them, and the properties of
the entity and complex types they carry (base types folded in).

Usage: python -m registrar.emulators.graph.schema.derive [PATH/TO/v1.0-csdl.xml]
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

NS = {"edm": "http://docs.oasis-open.org/odata/ns/edm"}
HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[3] / ".." / "shared" / "reference" / "graph-metadata" / "v1.0-csdl.xml"
ORIGIN = "microsoftgraph/msgraph-metadata clean_v10_metadata/cleanMetadata.xml @ f54f11b6 (August 2026)"

# What the emulator serves: top-level segment -> the types reachable under it that it needs.
ROOTS = {
    "deviceManagement": "singleton",
    "devices": "entityset",
    "groups": "entityset",
    "directoryObjects": "entityset",
    "users": "entityset",
    "subscribedSkus": "entityset",
}
NAVIGATIONS = {
    "deviceManagement": ["importedWindowsAutopilotDeviceIdentities", "windowsAutopilotDeviceIdentities"],
    "group": ["members"],
    "user": ["licenseDetails"],
}
TYPES = [
    "importedWindowsAutopilotDeviceIdentity",
    "importedWindowsAutopilotDeviceIdentityState",
    "windowsAutopilotDeviceIdentity",
    "device",
    "group",
    "user",
    "assignedLicense",
    "licenseDetails",
    "servicePlanInfo",
    "subscribedSku",
]
ACTIONS_ON = ["importedWindowsAutopilotDeviceIdentity", "windowsAutopilotDeviceIdentity", "windowsAutopilotSettings"]


def _short(type_name: str) -> str:
    return type_name.removeprefix("Collection(").removesuffix(")").split(".")[-1]


def derive(source: Path) -> dict:
    # Microsoft's published metadata, read from the maintainers' folder by hand: not untrusted input.
    schema = ET.parse(source).getroot().find(".//edm:Schema", NS)  # noqa: S314
    by_name = {e.get("Name"): e for e in schema if e.tag.endswith(("EntityType", "ComplexType"))}

    def properties(name: str) -> dict[str, str]:
        element = by_name.get(name)
        if element is None:
            return {}
        found = properties(_short(element.get("BaseType", ""))) if element.get("BaseType") else {}
        for prop in element.findall("edm:Property", NS) + element.findall("edm:NavigationProperty", NS):
            found[prop.get("Name")] = prop.get("Type")
        return found

    container = schema.find("edm:EntityContainer", NS)
    roots = {}
    for child in container:
        name = child.get("Name")
        if name in ROOTS:
            roots[name] = _short(child.get("Type") or child.get("EntityType"))
    navigations = {
        owner: {n: properties(owner).get(n) for n in names if properties(owner).get(n)}
        for owner, names in NAVIGATIONS.items()
    }
    actions: dict[str, dict[str, list[str]]] = {}
    for action in schema.findall("edm:Action", NS):
        if action.get("IsBound") != "true":
            continue
        binding, *parameters = action.findall("edm:Parameter", NS)
        kind = binding.get("Type")
        if _short(kind) in ACTIONS_ON:
            key = f"Collection({_short(kind)})" if kind.startswith("Collection(") else _short(kind)
            actions.setdefault(key, {})[action.get("Name")] = [p.get("Name") for p in parameters]
    return {
        "origin": ORIGIN,
        "roots": roots,
        "navigations": navigations,
        "boundActions": {k: dict(sorted(v.items())) for k, v in sorted(actions.items())},
        "types": {name: properties(name) for name in TYPES},
        "absent": sorted(n for n in ("windowsAutopilotSettings",) if n not in by_name and not _in(container, n)),
    }


def _in(container, name: str) -> bool:
    return any(child.get("Name") == name for child in container)


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE.resolve()
    table = derive(source)
    (HERE / "v1_0.json").write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {HERE / 'v1_0.json'} from {source}")


if __name__ == "__main__":
    main()
