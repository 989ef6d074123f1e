"""The request-field table (`convertly/fields.py`) against the parser and /openapi.json: every
name a route's parser reads is in its table and in its request schema, and nothing more."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from convertly import fields
from convertly.api import forms, openapi
from convertly.fields import Field, Kind, Route
from tests import images
from tests.api.support import Tenant, post

SCHEMA_OF = {Route.CONVERT: "ConvertRequest", Route.COMPRESS: "CompressRequest",
             Route.JOBS: "CreateJobRequest"}
# Compress looks `format`/`formats` up only to refuse them (400: use /api/convert).
REFUSED = {Route.COMPRESS: frozenset(fields.BY_NAME["format"].names)}


def _value(field: Field) -> Any:
    """A valid value of `field`, as the SDK sends it."""
    if field.name == "format":
        return "png"
    if field.default is not None:
        return field.default
    if field.kind is Kind.CHOICE:
        return field.choices[0]
    assert field.low is not None
    return field.low


def _every_field(route: Route) -> dict[str, Any]:
    """Every field of `route`'s table, aliases and per-file arrays included, at a valid value
    (an array of one null: the singular value). Text fields (URLs fetched or called, and the
    callback's secret) are left out: they are looked up all the same."""
    sent: dict[str, Any] = {}
    for field in fields.fields_for(route):
        if field.kind in (Kind.FILES, Kind.TEXT):
            continue
        for name in (field.name, *field.aliases):
            sent[name] = _value(field)
        if field.array is not None:
            sent[field.array] = [None]
    return sent


def _parsed_names(client: TestClient, tenant: Tenant, route: Route,
                  monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The names the route's parser looks up while it accepts a request with every field."""
    looked_up: set[str] = set()
    get = forms.ParsedForm.get

    def recording(self: forms.ParsedForm, name: str) -> str | None:
        looked_up.add(name)
        return get(self, name)

    monkeypatch.setattr(forms.ParsedForm, "get", recording)
    response = post(client, route.value, tenant, [("photo.jpg", images.jpeg(64, 48))],
                    **_every_field(route))
    assert response.status_code == 200, response.text
    return looked_up | set(forms.FILE_FIELDS)


def _drift(parsed: set[str], documented: set[str], route: Route) -> tuple[set[str], set[str]]:
    """(parsed but not documented, documented but not parsed)."""
    parsed = parsed - REFUSED.get(route, frozenset())
    return parsed - documented, documented - parsed


def _schema_names(spec: dict[str, Any], route: Route) -> set[str]:
    body = spec["paths"][route.value]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"] == {"$ref": f"#/components/schemas/{SCHEMA_OF[route]}"}
    return set(spec["components"]["schemas"][SCHEMA_OF[route]]["properties"])


@pytest.mark.parametrize("route", list(Route), ids=lambda r: r.name.lower())
def test_parser_table_and_openapi_name_the_same_fields(
        client: TestClient, tenant: Tenant, route: Route,
        monkeypatch: pytest.MonkeyPatch) -> None:
    table = set(fields.names_for(route))
    served = _schema_names(client.get("/openapi.json").json(), route)
    parsed = _parsed_names(client, tenant, route, monkeypatch)
    assert _drift(parsed, served, route) == (set(), set())
    assert served == table
    assert {"page", "pages", "quality"} <= served


def test_a_field_parsed_but_dropped_from_the_table_is_drift(
        client: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Take `page` out of the table the schema is built from while the parser still reads
    it: the check names it."""
    parsed = _parsed_names(client, tenant, Route.CONVERT, monkeypatch)
    monkeypatch.setattr(fields, "FIELDS", tuple(f for f in fields.FIELDS if f.name != "page"))
    documented = set(openapi.request_schema(Route.CONVERT)["properties"])
    assert _drift(parsed, documented, Route.CONVERT) == ({"page", "pages"}, set())
