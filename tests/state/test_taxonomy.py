"""The taxonomy store contract, on both engines: a slug unique per tenant and locale, kept
so through updates and deletes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from convertly.state.base import TaxonomyStore
from convertly.state.records import TaxonomyTerm
from convertly.state.redis.taxonomy import RedisTaxonomyStore
from convertly.state.sqlite.database import Database
from convertly.state.sqlite.taxonomy import SqliteTaxonomyStore
from tests.state.conftest import ENGINES


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TaxonomyStore:
    if request.param == "sqlite":
        return SqliteTaxonomyStore(Database(tmp_path / "state.db"))
    return RedisTaxonomyStore(request.getfixturevalue("redis_client"))


def term(term_id: str, slug: str, *, locale: str = "en", tenant: str = "t1",
         synonyms: tuple[str, ...] = ()) -> TaxonomyTerm:
    return TaxonomyTerm(id=term_id, tenant=tenant, slug=slug, label=slug.title(),
                        locale=locale, group_name=None, synonyms=synonyms, created_at=1.0,
                        updated_at=1.0)


def test_terms_are_unique_per_tenant_and_locale(store: TaxonomyStore) -> None:
    sunset = term("x1", "sunset", synonyms=("dusk", "golden hour"))
    assert store.add(sunset)
    assert not store.add(term("x2", "sunset"))  # taken in en
    assert store.add(term("x3", "sunset", locale="de"))
    assert store.add(term("x4", "sunset", tenant="t2"))
    assert store.add(term("x5", "beach"))
    assert store.get("x1", "t1") == sunset
    assert store.get("x1", "t2") is None and store.get("x2", "t1") is None
    assert [t.id for t in store.all("t1", "en")] == ["x5", "x1"]
    assert [t.id for t in store.all("t1")] == ["x5", "x3", "x1"]
    assert store.count("t1") == 3 and store.count("t9") == 0


def test_updates_and_removals_keep_slugs_unique(store: TaxonomyStore) -> None:
    store.add(term("x1", "sunset"))
    store.add(term("x2", "beach"))
    assert store.update(replace(term("x2", "sunset"), label="Taken")) == "taken"
    assert store.get("x2", "t1") == term("x2", "beach")
    assert store.update(term("x9", "new")) == "missing"
    assert store.update(replace(term("x1", "sunset"), tenant="t2")) == "missing"
    # Renaming frees the old slug; moving to another locale frees it there.
    assert store.update(term("x1", "dusk", synonyms=("evening",))) == "updated"
    assert store.get("x1", "t1") == term("x1", "dusk", synonyms=("evening",))
    assert store.add(term("x3", "sunset"))
    assert store.update(term("x2", "beach", locale="fr")) == "updated"
    assert store.add(term("x4", "beach"))
    assert not store.remove("x1", "t2")
    assert store.remove("x1", "t1") and not store.remove("x1", "t1")
    assert store.add(term("x5", "dusk"))
    assert sorted(t.id for t in store.all("t1")) == ["x2", "x3", "x4", "x5"]
