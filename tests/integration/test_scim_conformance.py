"""scim2-tester's conformance checks against the SCIM server, in process: none may end in ERROR or CRITICAL."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient
from scim2_tester import Status, check_server
from scim_helpers import TestClientSCIM, provisioning_token, scim_http

from allotment.api.app import create_app


@pytest.mark.parametrize("backend", ["sqlite"])
def test_scim2_tester_finds_no_error(settings):
    app = create_app(settings, start_background=False)
    with TestClient(app):
        client = TestClientSCIM(scim_http(app, provisioning_token(app)))
        results = check_server(client)
    counts = Counter(r.status.name for r in results)
    print("scim2-tester results per status:", dict(counts))
    failed = [f"{r.status.name} {r.title} ({r.resource_type}): {r.reason}" for r in results
              if r.status in (Status.ERROR, Status.CRITICAL)]
    assert failed == []
    # Every part of the server was checked: discovery, and create, read, replace, PATCH and delete of both types.
    titles = {(r.title, r.resource_type) for r in results if r.status == Status.SUCCESS}
    for title in ("object_creation", "object_query_without_id", "object_replacement", "object_deletion",
                  "check_add_attribute", "check_remove_attribute", "check_replace_attribute"):
        assert {(title, "User"), (title, "Group")} <= titles, title
    assert counts["SUCCESS"] >= 60
