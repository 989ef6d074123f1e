"""Library taxonomy terms on SQLite (embedded mode): the `taxonomy_terms` table (the record
as JSON beside the columns its uniqueness and lookups need)."""

from __future__ import annotations

import json
import sqlite3

from convertly.state.records import TaxonomyTerm
from convertly.state.sqlite.database import Database


def _term(raw: str) -> TaxonomyTerm:
    return TaxonomyTerm.from_dict(json.loads(raw))


class SqliteTaxonomyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, term: TaxonomyTerm) -> bool:
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    "INSERT INTO taxonomy_terms (id, tenant, locale, slug, record)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (term.id, term.tenant, term.locale, term.slug, json.dumps(term.to_dict())))
        except sqlite3.IntegrityError:
            return False
        return True

    def get(self, term_id: str, tenant: str) -> TaxonomyTerm | None:
        row = self.db.read().execute(
            "SELECT record FROM taxonomy_terms WHERE id = ? AND tenant = ?",
            (term_id, tenant)).fetchone()
        return None if row is None else _term(row[0])

    def all(self, tenant: str, locale: str | None = None) -> list[TaxonomyTerm]:
        if locale is None:
            rows = self.db.read().execute(
                "SELECT record FROM taxonomy_terms WHERE tenant = ? ORDER BY slug, locale",
                (tenant,))
        else:
            rows = self.db.read().execute(
                "SELECT record FROM taxonomy_terms WHERE tenant = ? AND locale = ?"
                " ORDER BY slug", (tenant, locale))
        return [_term(r[0]) for r in rows.fetchall()]

    def count(self, tenant: str) -> int:
        row = self.db.read().execute(
            "SELECT count(*) FROM taxonomy_terms WHERE tenant = ?", (tenant,)).fetchone()
        return int(row[0])

    def update(self, term: TaxonomyTerm) -> str:
        try:
            with self.db.transaction() as conn:
                cursor = conn.execute(
                    "UPDATE taxonomy_terms SET locale = ?, slug = ?, record = ?"
                    " WHERE id = ? AND tenant = ?",
                    (term.locale, term.slug, json.dumps(term.to_dict()), term.id, term.tenant))
        except sqlite3.IntegrityError:
            return "taken"
        return "updated" if cursor.rowcount == 1 else "missing"

    def remove(self, term_id: str, tenant: str) -> bool:
        with self.db.transaction() as conn:
            cursor = conn.execute("DELETE FROM taxonomy_terms WHERE id = ? AND tenant = ?",
                                  (term_id, tenant))
        return cursor.rowcount == 1
