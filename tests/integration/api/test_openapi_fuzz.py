"""Schemathesis, an independent OpenAPI fuzzer, against a real hub and its own OpenAPI.

Every generated request must get an answer that the OpenAPI describes (status code, content
type, body schema, Allow header) and never a server error. positive_data_acceptance is left
out: toolferry refuses some schema-valid documents on purpose (an empty program name in
``command[0]``), with a 400 that names the field.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from toolferry.config import Settings
from toolferry.hub import serve_embedded

pytestmark = pytest.mark.integration

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
        "allow_header_conformance",
    ]
)


def test_no_request_breaks_the_api_or_its_description(tmp_path: Path) -> None:
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis, "schemathesis is missing: run scripts/setup.sh (it is a test extra)"
    # Tasks stay QUEUED (no core is free), so fuzzed tasks never run anything.
    settings = Settings(data_dir=tmp_path, runtime="none", capacity_cpus=0.5, default_cpu_cores=1)
    with serve_embedded(settings) as (_hub, url):
        result = subprocess.run(
            [
                schemathesis,
                "run",
                f"{url}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                "25",
                "--seed",
                "20261122",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
