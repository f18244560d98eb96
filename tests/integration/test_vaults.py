"""Configuration vaults (ClearML, issue 17): per user, service account and group; JSON, YAML or HOCON; refused with
the parser's line and column or naming each machine key; enable switch and last update; the effective configuration
merged in order with each key's source; download; and who may do what."""

from __future__ import annotations

import pytest
from inventory_helpers import API, make_user


@pytest.fixture
def alice(client, admin_headers):
    return make_user(client, "alice", groups=("team-a", "team-b"))


def _vault(client, headers, **body):
    return client.post(f"{API}/vaults", headers=headers, json=body)


def test_a_user_keeps_a_vault_that_applies_only_while_enabled(client, alice):
    r = _vault(client, alice, name="alice-conf", format="hocon", content="sdk.aws.s3.region = eu-west-1\n")
    assert r.status_code == 201, r.text
    vault = r.json()
    assert vault["owner_kind"] == "user" and vault["owner"] == "alice" and vault["enabled"] is False
    assert client.get(f"{API}/config/effective", headers=alice).json()["keys"] == []
    r = client.patch(f"{API}/vaults/alice-conf", headers=alice, json={"enabled": True})
    assert r.status_code == 200 and r.json()["updated_at"] >= vault["updated_at"]
    effective = client.get(f"{API}/config/effective", headers=alice).json()
    assert effective["configuration"] == {"sdk": {"aws": {"s3": {"region": "eu-west-1"}}}}
    assert effective["keys"] == [{"key": "sdk.aws.s3.region", "value": "eu-west-1", "source": "alice-conf"}]


def test_group_vaults_merge_in_their_order_then_the_users_own(client, admin_headers, alice):
    for name, group, position, content in (("b-defaults", "team-b", 2, '{"sdk": {"bucket": "b", "retries": 2}}'),
                                           ("a-defaults", "team-a", 1, '{"sdk": {"bucket": "a", "region": "eu"}}')):
        r = _vault(client, admin_headers, name=name, group=group, position=position, format="json", content=content,
                   enabled=True)
        assert r.status_code == 201, r.text
    assert _vault(client, alice, name="mine", format="yaml", content="sdk:\n  region: us\n",
                  enabled=True).status_code == 201
    effective = client.get(f"{API}/config/effective", headers=alice).json()
    assert effective["vaults"] == ["a-defaults", "b-defaults", "mine"]
    assert {k["key"]: (k["value"], k["source"]) for k in effective["keys"]} == {
        "sdk.bucket": ("b", "b-defaults"), "sdk.retries": (2, "b-defaults"), "sdk.region": ("us", "mine")}
    # Disabling a group vault takes it out of the merge; admins see anyone's effective configuration.
    assert client.patch(f"{API}/vaults/b-defaults", headers=admin_headers, json={"enabled": False}).status_code == 200
    effective = client.get(f"{API}/config/effective?user=alice", headers=admin_headers).json()
    assert effective["user"] == "alice" and effective["configuration"] == {"sdk": {"bucket": "a", "region": "us"}}
    # A member reads the group's vaults but cannot change them, nor see another user's configuration.
    assert client.get(f"{API}/vaults/a-defaults", headers=alice).status_code == 200
    r = client.patch(f"{API}/vaults/a-defaults", headers=alice, json={"enabled": False})
    assert r.status_code == 403 and "platform admins" in r.json()["detail"]
    assert client.get(f"{API}/config/effective?user=admin", headers=alice).status_code == 403


@pytest.mark.parametrize(("fmt", "content", "where"), [
    ("json", '{\n  "a": 1,\n}', "line 3, column 1"),
    ("yaml", "a: [1\nb: 2", "line 2, column 2"),
    ("hocon", "a {\n  b = [1, 2\n}", "line 3, column 1"),
])
def test_invalid_content_is_refused_with_the_parsers_line_and_column(client, alice, fmt, content, where):
    r = _vault(client, alice, name="broken", format=fmt, content=content)
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["field"] == "content" and where in error["message"] and fmt.upper() in error["message"]


def test_machine_keys_are_refused_each_named(client, alice):
    content = "agent {\n cuda_version = 12.1\n worker_name = w1\n git_user = me\n}\nagent.debug = true"
    r = _vault(client, alice, name="machine", format="hocon", content=content)
    assert r.status_code == 422
    named = [e["message"].split()[0] for e in r.json()["errors"]]
    assert named == ["agent.cuda_version", "agent.worker_name", "agent.debug"]
    assert all(e["field"] == "content" for e in r.json()["errors"])
    # An edit is checked the same way, in the format it will have.
    assert _vault(client, alice, name="ok", format="json", content='{"agent": {"git_user": "me"}}').status_code == 201
    r = client.patch(f"{API}/vaults/ok", headers=alice, json={"content": '{"agent": {"default_python": "3.11"}}'})
    assert r.status_code == 422 and "agent.default_python" in r.text
    r = client.patch(f"{API}/vaults/ok", headers=alice, json={"format": "yaml", "content": "agent: [1"})
    assert r.status_code == 422 and "YAML" in r.text


def test_download_gives_the_text_with_its_formats_extension(client, alice):
    text = "# kept as written\nsdk:\n  region: eu\n"
    assert _vault(client, alice, name="dl", format="yaml", content=text).status_code == 201
    r = client.get(f"{API}/vaults/dl/download", headers=alice)
    assert r.status_code == 200 and r.text == text
    assert 'filename="dl.yaml"' in r.headers["content-disposition"]


def test_owners_and_visibility(client, admin_headers, alice):
    make_user(client, "bob")
    r = client.post(f"{API}/service-accounts", json={"name": "ci-bot"}, headers=admin_headers)
    assert r.status_code == 201, r.text
    assert _vault(client, admin_headers, name="bot-conf", service_account="ci-bot", content="a = 1").status_code == 201
    assert _vault(client, admin_headers, name="bob-conf", user="bob", content="a = 1").status_code == 201
    # Users cannot create vaults for others; a user reference that is a service account is named as such.
    r = _vault(client, alice, name="for-bob", user="bob", content="a = 1")
    assert r.status_code == 403
    r = _vault(client, admin_headers, name="x", user="ci-bot", content="")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "user"
    r = _vault(client, admin_headers, name="x", user="bob", group="team-a", content="")
    assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"user", "group"}
    # Another user's vault does not exist for alice; names are unique.
    assert client.get(f"{API}/vaults/bob-conf", headers=alice).status_code == 404
    assert [v["name"] for v in client.get(f"{API}/vaults", headers=alice).json()["items"]] == []
    assert _vault(client, alice, name="BOB-CONF", content="").status_code == 409
    listed = client.get(f"{API}/vaults?service_account=ci-bot", headers=admin_headers).json()["items"]
    assert [(v["name"], v["owner_kind"]) for v in listed] == [("bot-conf", "service_account")]


def test_vault_changes_are_audited_without_their_content(client, admin_headers, alice):
    assert _vault(client, alice, name="audited", content='token = "do-not-log"').status_code == 201
    assert client.delete(f"{API}/vaults/audited", headers=alice).status_code == 204
    events = client.get(f"{API}/audit?limit=20", headers=admin_headers).text
    assert "vault.create" in events and "vault.delete" in events and "do-not-log" not in events


def test_hide_list_defaults_platform_list_and_user_additions(client, admin_headers, alice):
    got = client.get(f"{API}/hide-list", headers=alice).json()
    assert got["platform"] == got["defaults"] and "AWS_SECRET_ACCESS_KEY" in got["effective"]
    r = client.put(f"{API}/hide-list/users/me", headers=alice, json={"names": ["WANDB_API_KEY"]})
    assert r.status_code == 200 and "WANDB_API_KEY" in r.json()["effective"] and r.json()["own"] == ["WANDB_API_KEY"]
    assert client.put(f"{API}/hide-list/platform", headers=alice, json={"names": []}).status_code == 403
    r = client.put(f"{API}/hide-list/platform", headers=admin_headers, json={"names": ["HF_TOKEN", "bad-name"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "names.1"
    r = client.put(f"{API}/hide-list/platform", headers=admin_headers, json={"names": ["HF_TOKEN"]})
    assert r.status_code == 200 and r.json()["platform"] == ["HF_TOKEN"]
    assert set(client.get(f"{API}/hide-list", headers=alice).json()["effective"]) == {
        "HF_TOKEN", "WANDB_API_KEY", "AWS_SECRET_ACCESS_KEY", "GCS_SERVICE_ACCOUNT_JSON", "GIT_TOKEN"}
    assert client.get(f"{API}/hide-list?user=admin", headers=alice).status_code == 403
    r = client.delete(f"{API}/hide-list/platform", headers=admin_headers)
    assert r.status_code == 200 and r.json()["platform"] == r.json()["defaults"]


def test_a_vault_of_the_users_group_reaches_every_person_and_no_service_account(client, admin_headers, alice):
    # Every human user is implicitly in the built-in `users` group (no membership row); service accounts are not.
    r = _vault(client, admin_headers, name="everyone", group="users", format="json", content='{"site": "eu"}',
               enabled=True)
    assert r.status_code == 201, r.text
    bob = make_user(client, "bob")  # in no group at all
    for person in (alice, bob):
        effective = client.get(f"{API}/config/effective", headers=person).json()
        assert effective["configuration"] == {"site": "eu"} and effective["vaults"] == ["everyone"]
    assert client.post(f"{API}/service-accounts", headers=admin_headers, json={"name": "robot"}).status_code == 201
    effective = client.get(f"{API}/config/effective?user=robot", headers=admin_headers).json()
    assert effective["vaults"] == [] and effective["configuration"] == {}
