"""The library taxonomy routes (`library.taxonomy` of Convertly's SDK): terms per locale,
`{terms, locale}`, `{term}` and `{success}` answers, terms in camelCase. Thin: the checks and
the rules are `convertly.taxonomy`'s."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from convertly import taxonomy
from convertly.api.library import json_object
from convertly.api.requests import authenticate, services
from convertly.state.records import TaxonomyTerm


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def render_term(term: TaxonomyTerm) -> dict[str, Any]:
    return {"id": term.id, "slug": term.slug, "label": term.label, "locale": term.locale,
            "groupName": term.group_name, "synonyms": list(term.synonyms),
            "createdAt": _iso(term.created_at), "updatedAt": _iso(term.updated_at)}


def query_locale(request: Request) -> str:
    raw = request.query_params.get("locale")
    return taxonomy.DEFAULT_LOCALE if not raw else taxonomy.check_locale(raw)


async def list_terms(request: Request) -> Response:
    key = authenticate(request)
    locale = query_locale(request)
    terms = await asyncio.to_thread(taxonomy.list_terms, services(request), key.tenant, locale)
    return JSONResponse({"terms": [render_term(t) for t in terms], "locale": locale})


async def create_term(request: Request) -> Response:
    key = authenticate(request)
    body = await json_object(request, set(taxonomy.FIELDS))
    fields = taxonomy.term_fields(body, partial=False)
    term = await asyncio.to_thread(taxonomy.create_term, services(request), key.tenant, fields)
    return JSONResponse({"term": render_term(term)}, status_code=201)


async def update_term(request: Request) -> Response:
    key = authenticate(request)
    body = await json_object(request, set(taxonomy.FIELDS))
    fields = taxonomy.term_fields(body, partial=True)
    term = await asyncio.to_thread(taxonomy.update_term, services(request), key.tenant,
                                   request.path_params["term_id"], fields)
    return JSONResponse({"term": render_term(term)})


async def delete_term(request: Request) -> Response:
    key = authenticate(request)
    await asyncio.to_thread(taxonomy.delete_term, services(request), key.tenant,
                            request.path_params["term_id"])
    return JSONResponse({"success": True})


async def ai_tags(request: Request) -> Response:
    """The SDK's `ai.tagFile`: 501 FEATURE_UNAVAILABLE after the checks (`convertly.taxonomy`)."""
    key = authenticate(request)
    body = await json_object(request, set(taxonomy.AI_TAG_FIELDS))
    taxonomy.check_ai_tag_options(body)
    await asyncio.to_thread(taxonomy.tag_file, services(request), key.tenant,
                            request.path_params["file_id"])
