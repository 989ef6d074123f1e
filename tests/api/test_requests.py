"""Query parameters are checked by one helper: the same bad value gets the same answer on
every route that takes it."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.api.support import Tenant, assert_error

PAGED = ("/api/jobs", "/api/files", "/api/files/search", "/api/webhooks/deliveries")


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=%C2%B2",
                                   "offset=-1", "offset=--1", "offset=1e3"])
def test_a_bad_paging_value_gets_one_message_everywhere(client: TestClient, tenant: Tenant,
                                                        query: str) -> None:
    bodies = [assert_error(client.get(f"{path}?{query}", headers=tenant.headers), 400,
                           "INVALID_FIELD", "whole number from")
              for path in PAGED]
    assert all(body == bodies[0] for body in bodies), bodies
