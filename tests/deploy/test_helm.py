"""deploy/helm/convertly, linted by Helm itself (Helm 4's lint, from the helm-sdkpy wheel; no
cluster and no helm binary needed): every template rendered with the values given, each
rendered document parsed as YAML and checked as a Kubernetes object (kind, apiVersion, name).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "convertly"

LINT = """
import asyncio, json, sys
import helm_sdkpy
config = helm_sdkpy.Configuration(
    kubeconfig="apiVersion: v1\\nkind: Config\\nclusters: []\\ncontexts: []\\nusers: []\\n")
print(json.dumps(asyncio.run(helm_sdkpy.Lint(config).run(sys.argv[1]))))
"""

SECRETS = {"secretKey": "k" * 32, "s3": {"accessKey": "convertly", "secretKey": "s" * 32}}


def _lint(tmp: Path, values: dict[str, Any]) -> dict[str, Any]:
    """Lint a copy of the chart whose values.yaml is the chart's own merged with `values`."""
    try:
        import helm_sdkpy  # noqa: F401
    except ImportError:
        pytest.fail("helm-sdkpy is not installed: run `make setup`")
    chart = tmp / "convertly"
    shutil.copytree(CHART, chart)
    with (chart / "values.yaml").open("a") as out:
        # Later keys win in Helm's values: JSON is YAML, so this overrides what it names.
        out.write("\n# test overrides\n")
        for key, value in values.items():
            out.write(f"{key}: {json.dumps(value)}\n")
    proc = subprocess.run([sys.executable, "-c", LINT, str(chart)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _problems(result: dict[str, Any]) -> list[Any]:
    # Severity: 1 info, 2 warning, 4 error (Helm's support.Severity).
    return [m for m in result["Messages"] if m["Severity"] > 1] + (result["Errors"] or [])


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) and key in out else value
    return out


@pytest.mark.parametrize("values", [
    pytest.param({"s3": {**SECRETS["s3"], "endpoint": "s3.example.com"}}, id="external-s3"),
    pytest.param({"s3": SECRETS["s3"], "seaweedfs": {"enabled": True}}, id="seaweedfs"),
    pytest.param({"s3": {**SECRETS["s3"], "endpoint": "s3.example.com"},
                  "redis": {"enabled": False, "externalUrl": "redis://:pw@redis.example:6379"},
                  "settings": {"CONVERTLY_PUBLIC_URL": "https://convert.example.com"}},
                 id="external-redis"),
])
def test_chart_lints_clean(tmp_path: Path, values: dict[str, Any]) -> None:
    result = _lint(tmp_path, _merge({"secretKey": SECRETS["secretKey"]}, values))
    assert result["TotalChartsLinted"] == 1
    assert _problems(result) == []


def test_lint_finds_a_broken_template(tmp_path: Path) -> None:
    # The check above can fail: a template whose output is not valid YAML is an error.
    values = {"secretKey": "k" * 32, "s3": {**SECRETS["s3"], "endpoint": "s3.example.com"},
              "api": {"replicas": "[unclosed"}}
    result = _lint(tmp_path, values)
    assert _problems(result) != []


def test_api_probes_and_worker_queues() -> None:
    api = (CHART / "templates" / "api.yaml").read_text()
    assert "livenessProbe:\n            httpGet: {path: /livez, port: http}" in api
    assert "readinessProbe:\n            httpGet: {path: /readyz, port: http}" in api
    values = (CHART / "values.yaml").read_text()
    assert "queues: image,archive" in values and "queues: media" in values
