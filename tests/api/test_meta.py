"""GET /api/formats, /openapi.json, /healthz and /."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.routing import Route
from starlette.testclient import TestClient

from convertly.api.routes import ROUTES
from convertly.models import OutputFormat, ResizePreset
from tests.api.support import AppEnv

IMAGE_OUTPUTS = {"jpg", "png", "webp", "avif", "tiff", "gif", "heif"}

# Seed 000 (Convertly's published OpenAPI for POST /api/jobs): the properties of
# CreateJobRequest's own object and of the ConvertRequest it extends.
SEED_CREATE_JOB_PROPERTIES = {
    "jobType", "createArchive", "saveToStorage", "mode", "modes", "targetByteValues",
    "losslessValues", "stripMetadataValues",
}
SEED_CONVERT_PROPERTIES = {
    "files", "format", "formats", "compression", "compressions", "resize", "resizes",
    "resizeWidths", "resizeHeights", "autoOrient", "autoOrients", "mono", "monos",
    "saveToStorage",
}
SEED_OUTPUT_FORMATS = {
    "jpg", "png", "webp", "avif", "tiff", "gif", "heif", "svg", "pdf", "mp4", "webm", "mov",
    "mp3", "wav", "ogg", "m4a", "flac", "zip", "tar", "tgz", "7z", "rar", "gz", "bz2", "xz",
}
SEED_RESIZE_MODES = {"original", "website", "email", "instagram", "linkedin", "ecommerce",
                     "square", "width", "height"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def test_formats_lists_the_registry_matrix(app_env: AppEnv, client: TestClient) -> None:
    response = client.get("/api/formats")  # public: no key needed
    assert response.status_code == 200
    body = response.json()
    matrix = app_env.services.registry.matrix()
    listed = {entry["kind"]: set(entry["targets"]) for entry in body["inputs"]}
    assert listed == {kind.value: {t.value for t in targets} for kind, targets in matrix.items()}
    for kind in ("jpeg", "png", "webp", "gif", "tiff", "avif", "heif", "bmp"):
        assert listed[kind] >= IMAGE_OUTPUTS | {"svg", "pdf", "zip", "7z", "gz"}
    # RAR output needs the proprietary `rar` program (CONVERTLY_RAR_COMMAND), unset here.
    assert set(body["outputs"]) == {f.value for f in OutputFormat} - {"rar"}
    assert all("rar" not in targets for targets in listed.values())
    assert listed["zip"] >= {"tar", "7z", "webp", "mp3"}  # re-pack, or convert what it holds
    assert {"jpeg", "png", "webp"} <= set(body["compress"])
    assert "bmp" in body["kinds"]
    assert body["resizePresets"] == [p.value for p in ResizePreset]
    jpeg = next(e for e in body["inputs"] if e["kind"] == "jpeg")
    assert (jpeg["family"], jpeg["mimeType"]) == ("image", "image/jpeg")


def test_formats_gives_names_and_what_an_archive_can_hold(client: TestClient) -> None:
    inputs = {entry["kind"]: entry for entry in client.get("/api/formats").json()["inputs"]}
    # Every extension and MIME type names one kind only, so a client's guess is unambiguous.
    extensions = [ext for entry in inputs.values() for ext in entry["extensions"]]
    assert len(extensions) == len(set(extensions))
    assert inputs["jpeg"]["extensions"][:2] == ["jpg", "jpeg"]
    assert "audio/x-m4a" in inputs["m4a"]["mimeTypes"]
    assert all(entry["mimeType"] in entry["mimeTypes"] for entry in inputs.values())
    # An archive's media targets convert what it holds; its other targets re-pack it.
    rar = inputs["rar"]
    assert {"png", "mp3", "mov"} <= set(rar["entryTargets"]) < set(rar["targets"])
    assert not {"zip", "7z", "tar", "tgz", "gz", "xz"} & set(rar["entryTargets"])
    assert "entryTargets" not in inputs["png"]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def _properties(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    if "$ref" in schema:
        return _properties(spec, _resolve(spec, schema["$ref"]))
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names |= _properties(spec, part)
    return names


def test_openapi_is_a_consistent_3_1_document(client: TestClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()

    assert spec["openapi"] == "3.1.0"
    assert isinstance(spec["info"]["title"], str) and isinstance(spec["info"]["version"], str)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http",
                                     "scheme": "bearer"}
    assert (schemes["apiKeyAuth"]["in"], schemes["apiKeyAuth"]["name"]) == ("header",
                                                                            "x-api-key")
    for requirement in spec["security"]:
        assert set(requirement) <= set(schemes)
    for ref in _refs(spec):
        _resolve(spec, ref)
    operation_ids = []
    for path, item in spec["paths"].items():
        assert path.startswith("/")
        templated = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for method, operation in item.items():
            assert method in HTTP_METHODS, (path, method)
            assert operation["responses"], (path, method)
            for status in operation["responses"]:
                assert status == "default" or (status.isdigit() and len(status) == 3)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == templated, (path, method)
            operation_ids.append(operation["operationId"])
    assert len(operation_ids) == len(set(operation_ids))


def test_openapi_documents_every_route(client: TestClient, app_env: AppEnv) -> None:
    spec = client.get("/openapi.json").json()
    routed = {
        (route.path, method.lower())
        for route in ROUTES
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD" or route.methods == {"HEAD"}
    }
    # Each media tool has a path of its own under the one /api/media/{tool} route.
    tools = {f"/api/media/{tool}" for tool in app_env.services.tools.names()}
    documented = {("/api/media/{tool}" if path in tools else path, method)
                  for path, item in spec["paths"].items() for method in item}
    assert routed == documented


def test_openapi_create_job_request_covers_convertlys(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    create_job = spec["components"]["schemas"]["CreateJobRequest"]
    assert _properties(spec, create_job) >= SEED_CREATE_JOB_PROPERTIES | SEED_CONVERT_PROPERTIES
    body = spec["paths"]["/api/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"] == {"$ref": "#/components/schemas/CreateJobRequest"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["OutputFormat"]["enum"]) >= SEED_OUTPUT_FORMATS
    assert set(schemas["ResizeMode"]["enum"]) == SEED_RESIZE_MODES
    # Convertly's contract requires "error"; this server always sends "code" as well.
    assert schemas["Error"]["required"] == ["error", "code"]


def test_healthz(app_env: AppEnv, client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"storage": "ok", "disk": "ok", "queue": "ok"}
    assert isinstance(body["queuedFiles"], int) and body["queuedFiles"] >= 0
    # Nothing is lost in the session's apps, so the watchdog never found a file to requeue.
    assert body["watchdog"] == {"stuckFiles": 0, "requeued": 0}
    if app_env.mode == "distributed":
        # The suite's worker consumes every queue; its lease is in Redis once it is up.
        assert body["workers"] == {"image": 1, "media": 1, "archive": 1}
    else:
        assert "workers" not in body


def test_index_points_at_the_docs(client: TestClient) -> None:
    response = client.get("/", headers={"Accept": "application/json"})
    assert response.headers["vary"] == "Accept"
    body = response.json()
    assert body["docs"] == "http://testserver/openapi.json"
    assert client.get(body["formats"]).status_code == 200


def test_index_is_the_dashboard_for_browsers(client: TestClient) -> None:
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    for headers in ({"Accept": accept}, {"Accept": "*/*"}, {}):
        response = client.get("/", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/dashboard/' in response.text
    prefers_json = "application/json, text/html;q=0.5"
    assert client.get("/", headers={"Accept": prefers_json}).json()["name"] == "convertly"
