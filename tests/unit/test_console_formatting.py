"""The console's shared presentation helpers: amounts, field messages, audit differences and links, paging."""

from __future__ import annotations

import pytest

from allotment.web.audit_view import FieldChange, field_changes, target_href
from allotment.web.console import field_message
from allotment.web.formatting import amounts_of, amounts_text, memory_text
from allotment.web.paging import fetch_page


@pytest.mark.parametrize(("gpu", "cpu", "memory", "text"), [
    ("0", "0.2", "0", "0.2 CPU"),
    ("1", "4", "16Gi", "1 GPU · 4 CPU · 16 GiB"),
    ("8", "0", "1536Mi", "8 GPUs · 1536 MiB"),
    ("0.25", "1", "512", "0.25 GPU · 1 CPU · 512 B"),
    ("0", "0", "0", "—"),
    ("unlimited", None, None, "unlimited GPU"),
])
def test_amounts_leave_out_zeros_and_give_memory_a_unit(gpu, cpu, memory, text):
    assert amounts_text(gpu, cpu, memory) == text


def test_amounts_of_reads_objects_and_dicts():
    class Job:
        gpu, cpu, memory = "2", "0.5", "2Gi"
    assert amounts_of(Job()) == "2 GPUs · 0.5 CPU · 2 GiB"
    assert amounts_of({"gpu": "0", "cpu": "1", "memory": "0"}) == "1 CPU"
    assert memory_text("lots") == "lots"


@pytest.mark.parametrize(("message", "label", "shown"), [
    ("e-mail a@b.c is already registered", "E-mail", "E-mail a@b.c is already registered"),
    ("must be at least 8 characters long", "Password", "Password must be at least 8 characters long"),
    ("username bob is already taken", "Username", "Username bob is already taken"),
    ("password_confirm does not match", "Password confirm", "Password_confirm does not match"),
    ("is required", "Name", "Name is required"),
])
def test_a_field_message_names_its_field_once(message, label, shown):
    assert field_message(message, label) == shown


@pytest.mark.parametrize(("changes", "rows", "context"), [
    (None, [], {}),
    ({"before": {"label": "a"}, "after": {"label": "b"}}, [FieldChange("label", "a", "b", "changed")], {}),
    ({"before": None, "after": {"name": "q", "limit": 4}},
     [FieldChange("name", None, "q", "added"), FieldChange("limit", None, "4", "added")], {}),
    ({"before": {"name": "q", "tags": ["x"]}}, [FieldChange("name", "q", None, "removed"),
                                                FieldChange("tags", '["x"]', None, "removed")], {}),
    ({"before": {"revoked_at": None}, "after": {"revoked_at": "2026-01-01"}, "owner": "bob"},
     [FieldChange("revoked_at", "—", "2026-01-01", "changed")], {"owner": "bob"}),
    ({"before": {"a": 1, "b": True}, "after": {"a": 1, "b": False}}, [FieldChange("b", "yes", "no", "changed")], {}),
    ({"resource": "gpu"}, [], {"resource": "gpu"}),
])
def test_audit_changes_read_as_a_difference(changes, rows, context):
    assert field_changes(changes) == (rows, context)


@pytest.mark.parametrize(("target_type", "target", "target_id", "action", "href"), [
    ("user", "bob", "7", "user.update", "/ui/users/7"),
    ("user", "bob", "7", "user.delete", None),
    ("job", "train", "12", "job.cancel", "/ui/jobs/12"),
    ("quota", "a, b", None, "quota.scale", None),
    ("quota", "team-a", "3", "quota.update", "/ui/quotas/3"),
    ("cluster", "gpu farm", "1", "cluster.update", "/ui/clusters/gpu%20farm"),
    ("pool", "local/h100", "2", "pool.update", "/ui/clusters/local"),
    ("cluster_role", "local/bob", None, "cluster_role.grant", "/ui/clusters/local/members"),
    ("service_account", "ci/bot", "9", "service_account.update", "/ui/service-accounts/ci%2Fbot"),
    ("resource_policy", "default", "1", "resource_policy.update", "/ui/resource-policies/default"),
    ("site", "site", None, "site.update", None),
])
def test_audit_targets_link_to_their_page(target_type, target, target_id, action, href):
    assert target_href(target_type, target, target_id, action) == href


def test_a_page_past_the_end_is_the_last_page():
    items = list(range(30))
    calls = []

    def fetch(limit, offset):
        calls.append(offset)
        return items[offset:offset + limit], len(items)

    rows, page = fetch_page(999, fetch, size=25)
    assert (page.number, page.pages, rows) == (2, 2, items[25:])
    assert calls == [24950, 25]
    rows, page = fetch_page(1, lambda limit, offset: ([], 0))
    assert (page.number, page.pages, rows) == (1, 1, [])
