"""The OpenAPI document of the dashboard API, generated from the handlers' own resolvers.

`python -m local.openapi` writes docs/openapi.json; a test fails when the file drifts.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from local.template import ROOT, folder_of, resources

OUTPUT = ROOT / "docs" / "openapi.json"
TITLE = "Integration lifecycle and billing API"
VERSION = "1.0.0"


def api_function_folders() -> list[str]:
    """Function folders with HttpApi routes in template.yaml, in template order."""
    folders = []
    for resource in resources("AWS::Serverless::Function").values():
        events = (resource["Properties"].get("Events") or {}).values()
        if any(e["Type"] == "HttpApi" for e in events):
            folders.append(folder_of(resource["Properties"]))
    return folders


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for folder in api_function_folders():
        app = importlib.import_module(f"functions.{folder}.app").app
        part = json.loads(app.get_openapi_json_schema(title=TITLE, version=VERSION))
        for path, operations in part.get("paths", {}).items():
            paths.setdefault(path, {}).update(operations)
        schemas.update(part.get("components", {}).get("schemas", {}))
    problem = {"$ref": "#/components/schemas/Problem"}
    schemas["Problem"] = {
        "type": "object",
        "required": ["status", "code", "title", "detail"],
        "properties": {
            "status": {"type": "integer"},
            "code": {"type": "string"},
            "title": {"type": "string"},
            "detail": {"type": "string"},
        },
        "additionalProperties": True,
    }
    for operations in paths.values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in ("400", "401", "402", "403", "404", "409", "413", "415", "422", "503"):
                responses[status] = {
                    "description": "A problem document (api.md, Errors).",
                    "content": {"application/problem+json": {"schema": problem}},
                }
            operation["security"] = [{"cognito": []}]
            if method in ("post", "put"):
                operation.setdefault("parameters", []).append(
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    }
                )
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION},
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
