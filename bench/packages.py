"""Lambda package sizes from `sam build`: the layer and each function, zipped as deployed.

Lambda's limits: 50 MB zipped for a direct upload (function or layer), and 250 MB unzipped for
a function together with all its layers. Each `.aws-sam/build/<LogicalId>` folder is zipped in
memory the way `sam package` zips it (deflate, every file), so run `make build` first.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from bench.harness import record, table
from local.template import ROOT, resources

BUILD = ROOT / ".aws-sam" / "build"
ZIPPED_LIMIT_MB = 50
UNZIPPED_LIMIT_MB = 250
MB = 1024 * 1024


def _sizes(folder: Path) -> tuple[int, int, int]:
    """(zipped bytes, unzipped bytes, files) of everything under `folder`."""
    buffer = io.BytesIO()
    unzipped = files = 0
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
                unzipped += path.stat().st_size
                files += 1
    return len(buffer.getvalue()), unzipped, files


def _human(size: float) -> str:
    return f"{size / MB:.2f} MB" if size >= MB / 10 else f"{size / 1024:.1f} KB"


def main() -> dict[str, Any]:
    built = {
        logical_id: BUILD / logical_id
        for kind in ("AWS::Serverless::LayerVersion", "AWS::Serverless::Function")
        for logical_id in sorted(resources(kind))
    }
    missing = [name for name, folder in built.items() if not folder.is_dir()]
    if missing:
        raise SystemExit(f"no sam build output for {missing}: run `make build` first")
    layers = set(resources("AWS::Serverless::LayerVersion"))
    figures: dict[str, Any] = {
        "limits_mb": {"zipped": ZIPPED_LIMIT_MB, "unzipped_with_layers": UNZIPPED_LIMIT_MB},
        "packages": {},
    }
    layer_unzipped = 0
    for name, folder in built.items():
        zipped, unzipped, files = _sizes(folder)
        if name in layers:
            layer_unzipped += unzipped
        figures["packages"][name] = {
            "kind": "layer" if name in layers else "function",
            "zipped_bytes": zipped,
            "unzipped_bytes": unzipped,
            "zipped_mb": round(zipped / MB, 3),
            "files": files,
        }
    rows = []
    for name, entry in figures["packages"].items():
        function = entry["kind"] == "function"
        # The unzipped limit counts a function together with its layers.
        total = entry["unzipped_bytes"] + (layer_unzipped if function else 0)
        entry["unzipped_with_layers_mb"] = round(total / MB, 2)
        rows.append(
            [
                name,
                entry["kind"],
                _human(entry["zipped_bytes"]),
                f"{entry['zipped_bytes'] / MB / ZIPPED_LIMIT_MB:.1%}",
                _human(entry["unzipped_bytes"]),
                _human(total),
                f"{total / MB / UNZIPPED_LIMIT_MB:.1%}",
                entry["files"],
            ]
        )
    table(
        "Lambda packages from `sam build` (.aws-sam/build), zipped in memory",
        [
            "package",
            "kind",
            "zipped",
            f"of {ZIPPED_LIMIT_MB} MB",
            "unzipped",
            "unzipped with layer",
            f"of {UNZIPPED_LIMIT_MB} MB",
            "files",
        ],
        rows,
    )
    record("packages", figures)
    return figures


if __name__ == "__main__":
    main()
