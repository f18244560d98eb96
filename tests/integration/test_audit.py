"""The audit log API: filters, pagination, CSV exports, admins only."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

from access_helpers import API, new_credential, user_with_key

from allotment.db import utcnow


def make_history(client, admin_headers) -> tuple[dict, str]:
    """alice exists and logs in (set-up noise); then alice makes a credential, the admin adds alice to local and
    makes alice a manager. Returns alice's headers and the moment the history of interest starts."""
    alice = user_with_key(client, "alice")
    mark = utcnow().isoformat()
    new_credential(client, alice)
    client.put(f"{API}/clusters/local/users/alice", json={"role": "user"}, headers=admin_headers)
    client.put(f"{API}/clusters/local/users/alice", json={"role": "manager"}, headers=admin_headers)
    return alice, mark


def audit(client, headers, query="", since=None):
    from urllib.parse import parse_qsl

    params = dict(parse_qsl(query.lstrip("?")))
    if since:
        params["since"] = since
    r = client.get(f"{API}/audit", headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_filters_and_pagination(client, admin_headers):
    start = utcnow() - timedelta(seconds=1)
    _, mark = make_history(client, admin_headers)
    everything = audit(client, admin_headers, since=mark)
    assert [e["action"] for e in everything["items"]] == ["cluster_role.change", "cluster_role.grant",
                                                          "credential.create"]
    newest = everything["items"][0]
    assert newest["actor"] == "admin" and newest["on_behalf_of"] is None and newest["target_type"] == "cluster_role"
    assert newest["source"] == "testclient" and newest["changes"] == {"before": {"role": "user"},
                                                                      "after": {"role": "manager"}}
    assert datetime.fromisoformat(newest["at"]) >= start
    # Set-up noise is there too without the since filter: the logins.
    actions = [e["action"] for e in audit(client, admin_headers)["items"]]
    assert "auth.login" in actions

    assert [e["action"] for e in audit(client, admin_headers, "?actor=alice", mark)["items"]] == ["credential.create"]
    assert audit(client, admin_headers, "?actor=ADMIN", mark)["total"] == 2
    assert audit(client, admin_headers, "?action=cluster_role.grant", mark)["total"] == 1
    assert audit(client, admin_headers, "?action=cluster_role.*", mark)["total"] == 2
    assert audit(client, admin_headers, "?action=cluster_role", mark)["total"] == 0  # exact unless it ends in *
    assert audit(client, admin_headers, "?target=ALICE", mark)["total"] == 2
    assert audit(client, admin_headers, "?target=%25", mark)["total"] == 0  # LIKE wildcards are literal
    assert audit(client, admin_headers, "?target_type=credential", mark)["total"] == 1

    page = audit(client, admin_headers, "?limit=2&offset=1", mark)
    assert page["total"] == 3 and [e["action"] for e in page["items"]] == ["cluster_role.grant", "credential.create"]

    newest_at = datetime.fromisoformat(newest["at"])
    since = client.get(f"{API}/audit", params={"since": newest_at.isoformat()}, headers=admin_headers).json()
    assert newest["id"] in [e["id"] for e in since["items"]]  # since is inclusive
    until = client.get(f"{API}/audit", params={"until": newest_at.isoformat()}, headers=admin_headers).json()
    assert newest["id"] not in [e["id"] for e in until["items"]]  # until is exclusive
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert client.get(f"{API}/audit", params={"since": future}, headers=admin_headers).json()["total"] == 0
    before_all = (start - timedelta(minutes=5)).isoformat()
    assert client.get(f"{API}/audit", params={"until": before_all}, headers=admin_headers).json()["total"] == 0
    naive = (utcnow() - timedelta(hours=1)).replace(tzinfo=None).isoformat()  # taken as UTC
    assert client.get(f"{API}/audit", params={"since": naive}, headers=admin_headers).json()["total"] == \
        audit(client, admin_headers)["total"]


def test_bad_filters_are_field_errors(client, admin_headers):
    r = client.get(f"{API}/audit?since=yesterday", headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "since"
    r = client.get(f"{API}/audit", params={"since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
                   headers=admin_headers)
    assert r.status_code == 200 and r.json()["items"] == []  # an empty interval: no events (no schema can refuse it)
    assert client.get(f"{API}/audit?limit=0", headers=admin_headers).status_code == 422


def test_only_platform_admins_read_the_log_and_exports(client, admin_headers):
    alice, _ = make_history(client, admin_headers)
    for path in ("/audit", "/exports/audit.csv", "/exports/credentials.csv"):
        assert client.get(f"{API}{path}", headers=alice).status_code == 403
        assert client.get(f"{API}{path}").status_code == 401


def test_audit_csv_export_applies_the_filters(client, admin_headers):
    make_history(client, admin_headers)
    r = client.get(f"{API}/exports/audit.csv?action=cluster_role.*", headers=admin_headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="audit.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["action"] for row in rows] == ["cluster_role.grant", "cluster_role.change"]  # oldest first
    assert rows[1]["actor"] == "admin" and rows[1]["target"] == "local/alice"
    assert json.loads(rows[1]["changes"]) == {"after": {"role": "manager"}, "before": {"role": "user"}}
    assert list(rows[0]) == ["id", "at", "actor", "on_behalf_of", "action", "target_type", "target", "target_id",
                             "source", "changes"]


def test_credentials_csv_export_has_no_secrets_and_defuses_formulas(client, admin_headers):
    alice, _ = make_history(client, admin_headers)
    created = new_credential(client, alice, label="=HYPERLINK(\"http://evil\")")
    r = client.get(f"{API}/exports/credentials.csv", headers=admin_headers)
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["owner"] for row in rows] == ["alice", "alice", "alice"]
    assert {row["status"] for row in rows} == {"active"}
    labelled = next(row for row in rows if row["access_key"] == created["access_key"])
    assert labelled["label"] == "'=HYPERLINK(\"http://evil\")"
    assert created["secret_key"] not in r.text
    assert set(rows[0]) == {"access_key", "label", "owner", "owner_kind", "status", "created_at", "expires_at",
                            "last_used_at", "last_used_from", "revoked_at"}
