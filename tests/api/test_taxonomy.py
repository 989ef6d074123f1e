"""The library taxonomy (`library.taxonomy` of Convertly's SDK) and the search facets it
labels: terms per tenant and locale, the 400s, 404s and 409s, synonyms resolving search tags.
Both modes."""

from __future__ import annotations

import re
from typing import Any

from starlette.testclient import TestClient

from tests import images
from tests.api.library_support import list_files, upload
from tests.api.support import Tenant, assert_error

TERMS = "/api/library/taxonomy/terms"


def create(client: TestClient, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = client.post(TERMS, headers=tenant.headers, json=body)
    assert response.status_code == 201, response.text
    term: dict[str, Any] = response.json()["term"]
    return term


def test_terms_crud_per_locale_and_tenant(client: TestClient, tenant: Tenant,
                                          other_tenant: Tenant) -> None:
    portrait = create(client, tenant, slug="portrait-orientation", label="Portrait",
                      groupName="Shape", synonyms=["portrait", "Vertical ", "portrait"])
    assert set(portrait) == {"id", "slug", "label", "locale", "groupName", "synonyms",
                             "createdAt", "updatedAt"}
    assert re.fullmatch(r"tax_[0-9a-f]{24}", portrait["id"])
    assert (portrait["locale"], portrait["groupName"]) == ("en", "Shape")
    assert portrait["synonyms"] == ["portrait", "Vertical"]
    hochformat = create(client, tenant, slug="portrait-orientation", label="Hochformat",
                        locale="de")
    assert hochformat["groupName"] is None and hochformat["synonyms"] == []

    listed = client.get(TERMS, headers=tenant.headers).json()
    assert listed == {"terms": [portrait], "locale": "en"}
    german = client.get(TERMS, headers=tenant.headers, params={"locale": "de"}).json()
    assert [t["label"] for t in german["terms"]] == ["Hochformat"]
    # Language tags are case-insensitive: each is kept in its usual case.
    brazil = create(client, tenant, slug="retrato", label="Retrato", locale="PT-br")
    assert brazil["locale"] == "pt-BR"
    listed_br = client.get(TERMS, headers=tenant.headers, params={"locale": "pt-br"}).json()
    assert listed_br == {"terms": [brazil], "locale": "pt-BR"}
    assert client.get(TERMS, headers=other_tenant.headers).json()["terms"] == []

    # The same slug again in a locale is a 409; another tenant has its own vocabulary.
    body = assert_error(client.post(TERMS, headers=tenant.headers,
                                    json={"slug": "portrait-orientation", "label": "Again"}),
                        409, "CONFLICT", "portrait-orientation", "'en'")
    assert body["detail"]["field"] == "slug"
    create(client, other_tenant, slug="portrait-orientation", label="Theirs")

    response = client.patch(f"{TERMS}/{portrait['id']}", headers=tenant.headers,
                            json={"label": "Portrait format", "groupName": None})
    assert response.status_code == 200, response.text
    updated = response.json()["term"]
    assert (updated["label"], updated["groupName"], updated["slug"]) == (
        "Portrait format", None, "portrait-orientation")
    assert updated["synonyms"] == ["portrait", "Vertical"]
    assert updated["createdAt"] == portrait["createdAt"]
    landscape = create(client, tenant, slug="landscape", label="Landscape")
    assert_error(client.patch(f"{TERMS}/{landscape['id']}", headers=tenant.headers,
                              json={"slug": "portrait-orientation"}), 409, "CONFLICT")
    assert_error(client.patch(f"{TERMS}/{portrait['id']}", headers=other_tenant.headers,
                              json={"label": "x"}), 404, "NOT_FOUND")

    assert_error(client.delete(f"{TERMS}/{portrait['id']}", headers=other_tenant.headers),
                 404, "NOT_FOUND")
    response = client.delete(f"{TERMS}/{portrait['id']}", headers=tenant.headers)
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert_error(client.delete(f"{TERMS}/{portrait['id']}", headers=tenant.headers),
                 404, "NOT_FOUND")
    assert [t["slug"] for t in client.get(TERMS, headers=tenant.headers).json()["terms"]] \
        == ["landscape"]
    assert client.get(TERMS).status_code == 401


def test_bad_terms_are_400s_naming_the_field(client: TestClient, tenant: Tenant) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"label": "No slug"}, "slug"),
        ({"slug": "no-label"}, "label"),
        ({"slug": "Has Spaces", "label": "x"}, "slug"),
        ({"slug": "ok", "label": " "}, "label"),
        ({"slug": "ok", "label": "x", "locale": "english please"}, "locale"),
        ({"slug": "ok", "label": "x", "synonyms": "portrait"}, "synonyms"),
        ({"slug": "ok", "label": "x", "synonyms": ["a"] * 51}, "synonyms"),
        ({"slug": "ok", "label": "x", "groupName": 3}, "groupName"),
        ({"slug": "ok", "label": "x", "parent": "y"}, "parent"),
    ]
    for body, field in bad:
        answer = assert_error(client.post(TERMS, headers=tenant.headers, json=body),
                              400, "INVALID_FIELD", f"'{field}'")
        assert answer["detail"]["field"] == field
    assert_error(client.get(TERMS, headers=tenant.headers, params={"locale": "e n"}),
                 400, "INVALID_FIELD", "'locale'")
    assert_error(client.post(TERMS, headers=tenant.headers, content=b"[1]"),
                 400, "INVALID_REQUEST")
    assert client.get(TERMS, headers=tenant.headers).json()["terms"] == []


def test_search_facets_and_synonyms(client: TestClient, tenant: Tenant) -> None:
    tall = upload(client, tenant, "tall.png", images.png(20, 40))
    wide = upload(client, tenant, "wide.jpg", images.jpeg(40, 20))
    square = upload(client, tenant, "square.png", images.png(25, 25))
    for record, tags in ((tall, ["sunset", "portrait"]), (wide, ["Sunset"]),
                         (square, ["dusk", "city"])):
        response = client.patch(f"/api/files/{record['id']}", headers=tenant.headers,
                                json={"tags": tags})
        assert response.status_code == 200, response.text
    create(client, tenant, slug="sunset", label="Sunset", synonyms=["dusk", "golden hour"])
    create(client, tenant, slug="sonnenuntergang", label="Sonnenuntergang", locale="de",
           synonyms=["city"])

    def search(**params: str) -> dict[str, Any]:
        return list_files(client, tenant, "/api/files/search", **params)

    # Without facets asked for, none are answered.
    assert "facets" not in search()
    body = search(facets="tags,orientation,mimeType")
    assert body["facets"] == {
        "tags": [{"value": "Sunset", "count": 2, "label": "Sunset"},
                 {"value": "city", "count": 1},
                 {"value": "dusk", "count": 1, "label": "Sunset"},
                 {"value": "portrait", "count": 1}],
        "orientation": [{"value": "horizontal", "count": 1}, {"value": "square", "count": 1},
                        {"value": "vertical", "count": 1}],
        "mimeType": [{"value": "image/png", "count": 2}, {"value": "image/jpeg", "count": 1}],
    }
    # A synonym (or the label) finds the files carrying any form of its term, in the locale.
    found = search(tags="golden hour", facets="orientation")
    assert sorted(f["filename"] for f in found["files"]) == ["square.png", "tall.png",
                                                             "wide.jpg"]
    assert found["applied"]["tags"] == ["golden hour"]
    assert [f["filename"] for f in search(tags="golden hour", locale="de")["files"]] == []
    german = search(tags="sonnenuntergang,portrait", tagMode="all", locale="de",
                    facets="tags")
    assert [f["filename"] for f in german["files"]] == []
    german = search(tags="sonnenuntergang", locale="de", facets="tags")
    assert [f["filename"] for f in german["files"]] == ["square.png"]
    assert german["facets"]["tags"] == [{"value": "city", "count": 1,
                                         "label": "Sonnenuntergang"},
                                        {"value": "dusk", "count": 1}]
    assert german["applied"]["locale"] == "de"
    vertical = search(orientation="vertical", facets="tags")
    assert vertical["facets"] == {"tags": [{"value": "portrait", "count": 1},
                                           {"value": "sunset", "count": 1,
                                            "label": "Sunset"}]}
    assert_error(client.get("/api/files/search", headers=tenant.headers,
                            params={"facets": "tags,colour"}), 400, "INVALID_FIELD",
                 "'facets'", "colour")
    assert_error(client.get("/api/files/search", headers=tenant.headers,
                            params={"locale": "??"}), 400, "INVALID_FIELD", "'locale'")


def test_ai_tags_is_unavailable_without_a_model(client: TestClient, tenant: Tenant) -> None:
    photo = upload(client, tenant, "photo.png", images.png(8, 8))
    url = f"/api/files/{photo['id']}/ai-tags"
    for body, field in (({"maxTags": 0}, "maxTags"), ({"maxTags": 21}, "maxTags"),
                        ({"merge": "yes"}, "merge"), ({"locale": "??"}, "locale"),
                        ({"model": "x"}, "model")):
        answer = assert_error(client.post(url, headers=tenant.headers, json=body), 400,
                              "INVALID_FIELD", f"'{field}'")
        assert answer["detail"]["field"] == field
    assert_error(client.post("/api/files/file_missing/ai-tags", headers=tenant.headers,
                             json={}), 404, "NOT_FOUND")
    assert_error(client.post(url, headers=tenant.headers,
                             json={"maxTags": 8, "merge": True, "locale": "en"}),
                 501, "FEATURE_UNAVAILABLE", "AI tagging")
    record = client.get(f"/api/files/{photo['id']}", headers=tenant.headers).json()["file"]
    assert record["metadata"]["tags"] == []
