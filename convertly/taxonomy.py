"""The library taxonomy: each tenant's controlled vocabulary, per locale. A term has a
canonical `slug` (unique per tenant and locale), a `label`, an optional `groupName` and
`synonyms`. Search resolves the tags it is asked for through the terms of its locale (a tag
naming a term's slug, label or a synonym matches files carrying any of them) and labels its
tag facet counts with the terms' labels (`GET /api/files/search`, `convertly.api.library`).

Request bodies are checked here (`term_fields`), so the routes (`convertly.api.taxonomy`)
stay thin; every bad value is a 400 naming its field.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, NoReturn

from convertly import library
from convertly.errors import (
    ConflictError,
    FeatureUnavailableError,
    InvalidFieldError,
    NotFoundError,
    TaxonomyFullError,
)
from convertly.service import Services
from convertly.state.records import TaxonomyTerm, new_term_id

DEFAULT_LOCALE = "en"
MAX_TERMS = 5000  # per tenant, every locale together
MAX_SLUG = 80
MAX_LABEL = 120
MAX_GROUP = 80
MAX_SYNONYMS = 50
MAX_SYNONYM = 80
MAX_LOCALE = 35
FIELDS = frozenset({"slug", "label", "locale", "groupName", "synonyms"})
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?$")
# A BCP 47 language tag, loosely: "en", "pt-BR", "zh-Hant-TW".
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")


def check_locale(value: Any, field: str = "locale") -> str:
    """A language tag in its usual case (tags are case-insensitive): "pt-br" is "pt-BR",
    "zh-hant-tw" is "zh-Hant-TW"."""
    if not isinstance(value, str) or len(value) > MAX_LOCALE or not _LOCALE.match(value):
        raise InvalidFieldError(field, "must be a language tag such as en or pt-BR.")
    first, *rest = value.split("-")
    return "-".join([first.lower(), *(p.upper() if len(p) == 2 else p.title() if len(p) == 4
                                      else p.lower() for p in rest)])


def _text(value: Any, field: str, longest: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > longest:
        raise InvalidFieldError(field, f"must be a non-empty string of up to {longest} "
                                "characters.")
    return value.strip()


def _slug(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_SLUG or not _SLUG.match(value):
        raise InvalidFieldError("slug", f"must be up to {MAX_SLUG} lower-case letters, digits, "
                                "'-' and '_', starting and ending with a letter or digit "
                                "(such as portrait-orientation).")
    return value


def _group(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _text(value, "groupName", MAX_GROUP)


def _synonyms(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_SYNONYMS or not all(
            isinstance(s, str) and 0 < len(s.strip()) <= MAX_SYNONYM for s in value):
        raise InvalidFieldError("synonyms", f"must be a list of at most {MAX_SYNONYMS} "
                                f"non-empty strings of up to {MAX_SYNONYM} characters.")
    kept: dict[str, str] = {}
    for synonym in value:
        kept.setdefault(synonym.strip().casefold(), synonym.strip())
    return tuple(kept.values())


def term_fields(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The checked fields of a create (`partial=False`: slug and label required) or update
    body, by record field name. Fields a body leaves out are left out."""
    if not partial:
        for required in ("slug", "label"):
            if body.get(required) is None:
                raise InvalidFieldError(required, "is required.")
    fields: dict[str, Any] = {}
    if "slug" in body:
        fields["slug"] = _slug(body["slug"])
    if "label" in body:
        fields["label"] = _text(body["label"], "label", MAX_LABEL)
    if "locale" in body:
        fields["locale"] = check_locale(body["locale"]) if body["locale"] is not None \
            else DEFAULT_LOCALE
    if "groupName" in body:
        fields["group_name"] = _group(body["groupName"])
    if "synonyms" in body:
        fields["synonyms"] = _synonyms(body["synonyms"])
    return fields


def _taken(term: TaxonomyTerm) -> ConflictError:
    return ConflictError(f"A taxonomy term with slug {term.slug!r} already exists in locale "
                         f"{term.locale!r}; choose another slug or update that term.",
                         detail={"field": "slug", "slug": term.slug, "locale": term.locale})


def list_terms(svc: Services, tenant: str, locale: str) -> list[TaxonomyTerm]:
    return svc.taxonomy.all(tenant, locale)


def create_term(svc: Services, tenant: str, fields: dict[str, Any]) -> TaxonomyTerm:
    if svc.taxonomy.count(tenant) >= MAX_TERMS:
        raise TaxonomyFullError(f"This account has {MAX_TERMS} taxonomy terms, the most it "
                                "can hold; delete terms before adding more.")
    now = time.time()
    term = TaxonomyTerm(id=new_term_id(), tenant=tenant, slug=fields["slug"],
                        label=fields["label"], locale=fields.get("locale", DEFAULT_LOCALE),
                        group_name=fields.get("group_name"),
                        synonyms=fields.get("synonyms", ()), created_at=now, updated_at=now)
    if not svc.taxonomy.add(term):
        raise _taken(term)
    return term


def _missing(term_id: str) -> NotFoundError:
    return NotFoundError(f"No taxonomy term {term_id!r} for this API key.")


def update_term(svc: Services, tenant: str, term_id: str,
                fields: dict[str, Any]) -> TaxonomyTerm:
    before = svc.taxonomy.get(term_id, tenant)
    if before is None:
        raise _missing(term_id)
    after = replace(before, **fields, updated_at=time.time())
    outcome = svc.taxonomy.update(after)
    if outcome == "missing":
        raise _missing(term_id)
    if outcome == "taken":
        raise _taken(after)
    return after


def delete_term(svc: Services, tenant: str, term_id: str) -> None:
    if not svc.taxonomy.remove(term_id, tenant):
        raise _missing(term_id)


# --- search -----------------------------------------------------------------------------


def _names(term: TaxonomyTerm) -> tuple[str, ...]:
    """Every form a tag naming `term` may take: its slug, its label, its synonyms."""
    return (term.slug, term.label, *term.synonyms)


def tag_forms(terms: Iterable[TaxonomyTerm], tags: Iterable[str]) -> tuple[tuple[str, ...], ...]:
    """For each tag, the tag and every form of the terms it names (case-insensitively)."""
    by_name: dict[str, list[TaxonomyTerm]] = {}
    for term in terms:
        for name in _names(term):
            by_name.setdefault(name.casefold(), []).append(term)
    groups = []
    for tag in tags:
        forms = {tag.casefold(): tag}
        for term in by_name.get(tag.casefold(), ()):
            for name in _names(term):
                forms.setdefault(name.casefold(), name)
        groups.append(tuple(forms.values()))
    return tuple(groups)


def tag_labels(terms: Iterable[TaxonomyTerm]) -> dict[str, str]:
    """Each form of each term (case-folded) -> the term's label, for labelling facets."""
    labels: dict[str, str] = {}
    for term in terms:
        for name in _names(term):
            labels.setdefault(name.casefold(), term.label)
    return labels


# --- AI tagging -------------------------------------------------------------------------

AI_TAG_FIELDS = frozenset({"maxTags", "merge", "locale", "prompt"})
MAX_AI_TAGS = 20
MAX_PROMPT = 2000


def check_ai_tag_options(body: dict[str, Any]) -> None:
    """The options of `POST /api/files/{id}/ai-tags` (the SDK's `ai.tagFile`), checked so
    that a bad one is a 400 naming it whatever the server can do."""
    max_tags = body.get("maxTags")
    if max_tags is not None and (isinstance(max_tags, bool) or not isinstance(max_tags, int)
                                 or not 1 <= max_tags <= MAX_AI_TAGS):
        raise InvalidFieldError("maxTags", f"must be a whole number from 1 to {MAX_AI_TAGS}.")
    if body.get("merge") is not None and not isinstance(body["merge"], bool):
        raise InvalidFieldError("merge", "must be true or false.")
    if body.get("locale") is not None:
        check_locale(body["locale"])
    prompt = body.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > MAX_PROMPT):
        raise InvalidFieldError("prompt", f"must be a string of up to {MAX_PROMPT} "
                                "characters.")


def tag_file(svc: Services, tenant: str, file_id: str) -> NoReturn:
    """AI tagging of a stored image. This server has no image-tagging model to run, so it
    answers FeatureUnavailableError (501) for any file of the tenant (404 for others)."""
    library.require_file(svc, tenant, file_id)
    raise FeatureUnavailableError(
        "AI tagging is not available on this server: it runs no image-tagging model. Set "
        "tags yourself with PATCH /api/files/{id} (`tags`); search resolves them through "
        "the library taxonomy.")
