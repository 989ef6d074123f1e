"""A property-based fuzz run of every operation in /openapi.json (schemathesis) against a real
server: valid and invalid requests alike never get a 5xx, and every answer conforms to the
document (status codes, content types, bodies, the error shape). Kept short: MAX_EXAMPLES
requests per operation and mode, derandomized so that a run is repeatable."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.hostile.harness import HostileServer

MAX_EXAMPLES = 25
# The media tools are one endpoint (POST /api/media/{tool}) with one path each in the
# document; these stand for them all (no options; numbers, choices, lengths, colours). Each
# tool's options are checked by transforms.parse, tested on its own.
FUZZED_TOOLS = {"/api/media/strip-metadata", "/api/media/thumbnail"}
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance,
          content_type_conformance, response_schema_conformance]


def _exercise(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def exercise(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=60)

    exercise()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                         ids=lambda m: m.value)
def test_openapi_operations(small_server: HostileServer, mode: GenerationMode) -> None:
    """Every operation, up to MAX_EXAMPLES generated requests each: schema-valid ones, then
    schema-violating ones (operations without inputs have none of the latter)."""
    schema = schemathesis.openapi.from_url(f"{small_server.base}/openapi.json")
    failures: list[str] = []
    exercised = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.startswith("/api/media/") and operation.path not in FUZZED_TOOLS:
            continue
        headers = {} if operation.path.startswith("/api/download") else small_server.headers

        try:
            _exercise(operation, mode, headers)
        except Unsatisfiable:
            continue  # nothing in this operation's request can be made invalid
        except Exception as exc:  # every operation runs; all failures are reported
            failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
        exercised += 1
    assert exercised >= (9 if mode is GenerationMode.POSITIVE else 5)
    assert not failures, "\n\n".join(failures)
