"""The CDK app: `make synth` (from infra/) or `cdk synth` (from the repository root).

Synthesises offline: no AWS account, no Docker. Context (`-c stage=prod -c tracing=true
-c tableCmk=true`) overrides the defaults kept in the repository's cdk.json, which are also
applied when this file is run directly with `python app.py`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from loyalty_infra.config import CLI_CONTEXT_DEFAULTS
from loyalty_infra.stack import build

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"


def default_context() -> dict[str, Any]:
    if not CDK_JSON.is_file():
        return {}
    context = json.loads(CDK_JSON.read_text()).get("context", {})
    return dict(context) if isinstance(context, dict) else {}


def main() -> None:
    # The CLI's defaults first: `make synth` then writes exactly what `cdk deploy` deploys.
    app = cdk.App(context={**CLI_CONTEXT_DEFAULTS, **default_context()})
    build(app)
    app.synth()


if __name__ == "__main__":
    main()
