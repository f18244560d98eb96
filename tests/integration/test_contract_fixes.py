"""Direct regression tests for what the Schemathesis contract run (test_api_contract.py) found: valid data the API
refused because a rule was missing from its schema, invalid data it took, and statuses it did not declare."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from user_helpers import PASSWORD, login, make_user

from allotment.api import problems
from allotment.identity.routes_users import UserSort
from allotment.identity.service import SORTS

API = "/api/v1"


def openapi(client) -> dict:
    return client.get("/api/openapi.json").json()


def test_the_user_sort_enum_is_the_service_s_keys(client, admin_headers):
    assert set(UserSort.__args__) == {f"{sign}{key}" for key in SORTS for sign in ("", "-")}
    assert client.get(f"{API}/users?sort=%C2%AA", headers=admin_headers).status_code == 422
    assert client.get(f"{API}/users?sort=-created_at", headers=admin_headers).status_code == 200


def test_the_user_schema_states_the_email_rules(client, admin_headers):
    email = openapi(client)["components"]["schemas"]["UserCreate"]["properties"]["email"]
    assert email["format"] == "email" and email["minLength"] >= 1
    r = client.post(f"{API}/users", headers=admin_headers,
                    json={"email": "a@b.test", "username": "tester", "password": "Passw0rd!x"})
    assert r.status_code == 201, r.text  # .test, which `format: email` generators use, is taken


def test_a_credential_status_filter_is_an_enum(client, admin_headers):
    assert client.get(f"{API}/credentials?status=", headers=admin_headers).status_code == 422
    assert client.get(f"{API}/credentials?status=revoked", headers=admin_headers).status_code == 200


def test_a_credential_takes_at_most_one_expiry_and_a_past_one_makes_it_expired(client, admin_headers):
    schema = openapi(client)["components"]["schemas"]["CredentialCreate"]
    assert schema["not"] == {"required": ["expires_in", "expires_at"]}
    assert "pattern" in schema["properties"]["expires_in"]["anyOf"][0]
    r = client.post(f"{API}/credentials", headers=admin_headers,
                    json={"expires_in": "", "expires_at": "2000-01-01T00:00:00Z"})
    assert r.status_code == 422
    r = client.post(f"{API}/credentials", headers=admin_headers, json={"expires_at": "2000-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    listed = client.get(f"{API}/credentials?status=expired", headers=admin_headers).json()
    assert [c["access_key"] for c in listed["items"]] == [r.json()["access_key"]]


def test_strict_booleans(client, admin_headers):
    r = client.post(f"{API}/service-accounts", headers=admin_headers, json={"name": "bot", "with_credential": 1})
    assert r.status_code == 422
    r = client.post(f"{API}/priority-classes", headers=admin_headers, json={"name": "p", "value": 1, "is_default": 0})
    assert r.status_code == 422


def test_whole_number_floats_are_integers(client, admin_headers):
    r = client.post(f"{API}/priority-classes", headers=admin_headers, json={"name": "big", "value": 183685393.0})
    assert r.status_code == 201, r.text
    assert r.json()["value"] == 183685393
    for value in (1.5, True, "1"):
        r = client.post(f"{API}/priority-classes", headers=admin_headers, json={"name": "odd", "value": value})
        assert r.status_code == 422, value


def test_audit_times_are_iso_8601_only_and_an_empty_interval_is_empty(client, admin_headers):
    for path in ("/audit", "/exports/audit.csv"):
        assert client.get(f"{API}{path}?until=0.5", headers=admin_headers).status_code == 422
    r = client.get(f"{API}/audit?since=2024-01-01T00:00:00Z&until=2024-01-01T00:00:00Z", headers=admin_headers)
    assert r.status_code == 200 and r.json()["items"] == []


def test_an_unknown_job_filter_is_404(client, admin_headers):
    assert client.get(f"{API}/jobs?quota=nope", headers=admin_headers).status_code == 404
    assert client.get(f"{API}/jobs?owner=nope", headers=admin_headers).status_code == 404


def test_a_job_needs_a_command_in_the_schema_and_may_omit_its_quota(client, admin_headers):
    job = openapi(client)["components"]["schemas"]["JobIn"]
    assert "command" in job["required"] and "quota" not in job["required"]  # default_quota.py picks one
    r = client.post(f"{API}/jobs", headers=admin_headers, json={"quota": "", "command": ""})
    assert r.status_code == 422


def test_quantities_carry_their_grammar(client, admin_headers):
    from allotment.api.fields import QUANTITY_REGEX
    document = str(openapi(client))
    assert QUANTITY_REGEX.replace("\\", "\\\\") in document


def test_a_wrong_current_password_is_a_403(client, admin_headers):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    r = client.post(f"{API}/auth/password", headers=alice,
                    json={"current_password": "Wr0ng-pass!", "new_password": "Br4nd-new-pw"})
    assert r.status_code == 403
    assert r.json()["errors"] == [{"field": "current_password", "message": "is not your current password"}]


def test_login_no_longer_declares_423(client):
    responses = openapi(client)["paths"][f"{API}/auth/login"]["post"]["responses"]
    assert "423" not in responses and {"401", "429"} <= set(responses)


def test_an_unencodable_field_name_is_escaped():
    assert problems._field_path(("body", "a\ud800")) == "a\\ud800"
    error = RequestValidationError([{"loc": ("body", "x\udfff"), "msg": "Extra inputs are not permitted"}])
    assert error.errors()[0]["loc"][1] == "x\udfff"


def test_an_extra_key_with_a_lone_surrogate_is_a_422(client, admin_headers):
    body = '{"name": "g1", "x\\ud800": 1}'
    r = client.post(f"{API}/groups", headers={**admin_headers, "Content-Type": "application/json"}, content=body)
    assert r.status_code == 422, r.text


# --- a password change: throttled, never locked --------------------------------------------------------------------

def change_password(client, headers, current: str, new: str = "Br4nd-new-pw"):
    return client.post(f"{API}/auth/password", headers=headers, json={"current_password": current, "new_password": new})


def test_a_password_change_declares_no_423(client):
    paths = openapi(client)["paths"]
    assert "423" not in paths[f"{API}/auth/password"]["post"]["responses"]
    assert "423" not in paths[f"{API}/users/{{user}}"]["patch"]["responses"]


def test_wrong_current_passwords_do_not_lock_password_sign_in(client, admin_headers, settings):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    for _ in range(settings.login_max_failures):
        assert change_password(client, alice, "Wr0ng-pass!").status_code == 403
    r = change_password(client, alice, "Wr0ng-pass!")
    assert r.status_code == 429 and "retry-after" in r.headers
    r = client.patch(f"{API}/users/alice", headers=alice, json={"password": "Br4nd-new-pw", "current_password": PASSWORD})
    assert r.status_code == 429  # one budget per account, whichever operation confirms the password
    login(client, "alice", PASSWORD)  # password sign-in is not locked


def test_a_locked_account_s_signed_in_owner_can_still_change_the_password(client, admin_headers, settings):
    make_user(client, admin_headers, "alice")
    alice = login(client, "alice", PASSWORD)
    for _ in range(settings.login_max_failures):  # someone else guesses at the sign-in and locks it
        client.post(f"{API}/auth/login", json={"username": "alice", "password": "Wr0ng-pass!"})
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["locked_until"] is not None
    assert change_password(client, alice, PASSWORD).status_code == 204
    assert client.get(f"{API}/users/alice", headers=admin_headers).json()["locked_until"] is None
    login(client, "alice", "Br4nd-new-pw")


# --- a user's full name and resource policy ------------------------------------------------------------------------

def test_a_user_s_full_name_and_resource_policy_state_their_rules(client, admin_headers):
    schemas = openapi(client)["components"]["schemas"]
    for model in ("UserCreate", "UserUpdate"):
        props = schemas[model]["properties"]
        full_name = props["full_name"]["anyOf"][0]
        policy = props["resource_policy"]["anyOf"][0]
        assert full_name["maxLength"] == 64 and "pattern" in full_name, model
        assert policy["maxLength"] == 64 and policy["minLength"] == 1 and "pattern" in policy, model
    body = {"email": "bob@example.test", "username": "bob", "password": PASSWORD}
    for field, value in (("resource_policy", "p" * 65), ("resource_policy", "a/b"), ("resource_policy", ""),
                         ("full_name", "Bob\x1b[31m")):
        r = client.post(f"{API}/users", headers=admin_headers, json={**body, field: value})
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field], (field, value)
    r = client.post(f"{API}/users", headers=admin_headers,
                    json={**body, "full_name": "Bob Ünlü", "resource_policy": "GPU small"})
    assert r.status_code == 201, r.text


# --- the CSV user import -------------------------------------------------------------------------------------------

def post_csv(client, headers, text: str, **params):
    return client.post(f"{API}/users/import", headers={**headers, "Content-Type": "text/csv"}, content=text,
                       params=params)


def test_the_import_body_states_the_header_and_the_server_takes_what_it_states(client, admin_headers):
    import re

    body = openapi(client)["paths"][f"{API}/users/import"]["post"]["requestBody"]["content"]["text/csv"]["schema"]
    assert body["minLength"] >= 1 and "pattern" in body
    pattern = re.compile(body["pattern"])
    for text in ("", "email,username\nann,x\n", "email,username,password\n\n", "email,username,password\nb\rc\n",
                 ' "email",username,password\nx\n'):  # a quote opens a quoted cell only as its first character
        assert not pattern.search(text), text
        assert post_csv(client, admin_headers, text).status_code == 422, text
    # Cases, spaces, quotes, blank lines and a byte-order mark, as spreadsheets write them.
    text = f'\ufeff\r\n EMAIL ,"Username\t",password ,  Full_Name\r\nann@example.test,ann,{PASSWORD},Ann\r\n'
    assert pattern.search(text)
    assert post_csv(client, admin_headers, text).status_code == 200


def test_bad_rows_are_a_207_report_not_a_refused_request(client, admin_headers):
    text = f"email,username,password\nann@example.test,ann,{PASSWORD}\nnot-an-email,ben,weak\n"
    r = post_csv(client, admin_headers, text)
    assert r.status_code == 207 and r.headers["content-type"] == "application/json"
    assert [row["status"] for row in r.json()["rows"]] == ["skipped", "failed"]
    r = post_csv(client, admin_headers, text, continue_on_error="true")
    assert r.status_code == 207 and [row["status"] for row in r.json()["rows"]] == ["created", "failed"]
    assert "207" in openapi(client)["paths"][f"{API}/users/import"]["post"]["responses"]


# --- a new cluster: one schema per backend ---------------------------------------------------------------------------

def test_a_new_cluster_has_one_schema_per_backend(client):
    components = openapi(client)["components"]["schemas"]
    variants = {v["properties"]["backend"]["const"]: v for v in components["ClusterCreate"]["oneOf"]}
    assert set(variants) == {"local", "simulated", "slurm", "ray"}
    assert "backend" not in variants["local"]["required"]  # the default
    assert components["LocalEngine"]["properties"] == {} and components["LocalEngine"]["additionalProperties"] is False
    assert set(components["SimulatedEngine"]["properties"]) == {"nodes_file", "min_gpu_share"}
    slurm = [ref["$ref"].rsplit("/", 1)[1] for ref in variants["slurm"]["properties"]["engine"]["anyOf"]]
    assert slurm == ["SlurmRestEngine", "SlurmCommandsEngine"] and "engine" in variants["slurm"]["required"]
    assert set(components["SlurmRestEngine"]["required"]) == {"rest_url", "rest_user", "token", "log_dir"}
    assert components["SlurmCommandsEngine"]["required"] == ["log_dir"]
    assert components["SlurmCommandsEngine"]["properties"]["token"]["type"] == "null"  # left out, or null
    assert components["RayEngine"]["required"] == ["address"]
    accounts = components["SlurmCommandsEngine"]["properties"]["accounts"]["anyOf"][0]
    assert "patternProperties" not in accounts and "pattern" in accounts["propertyNames"]


def test_engine_paths_refuse_every_repeated_slash_and_clusters_refuse_unknown_fields(client, admin_headers):
    for log_dir in ("//srv/jobs", "/srv/jobs//"):
        r = client.post(f"{API}/clusters", headers=admin_headers,
                        json={"name": "hpc", "backend": "slurm", "engine": {"log_dir": log_dir}})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "engine.log_dir", log_dir
    r = client.post(f"{API}/clusters", headers=admin_headers, json={"name": "hpc", "colour": "red"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"
    r = client.post(f"{API}/clusters", headers=admin_headers,
                    json={"name": "hpc", "backend": "slurm", "engine": {"log_dir": " /srv/jobs/ "}})
    assert r.status_code == 201, r.text


def test_pool_profile_order_keys_are_pool_names_in_property_names(client, admin_headers):
    order = openapi(client)["components"]["schemas"]["ConfigDocument"]["properties"]["pool_profile_order"]
    assert "patternProperties" not in order
    assert order["propertyNames"]["maxLength"] == 64 and "pattern" in order["propertyNames"]
    r = client.put(f"{API}/clusters/local/resource-config/draft", headers=admin_headers,
                   json={"pool_profile_order": {"bad\u001bpool": []}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("pool_profile_order.")


def test_an_unknown_quota_in_a_job_or_a_batch_is_a_404_naming_each_item(client, admin_headers):
    r = client.post(f"{API}/jobs", headers=admin_headers, json={"quota": "nope", "gpu": 1, "command": ["x"]})
    assert r.status_code == 404 and r.json()["errors"] == [{"field": "quota", "message": "no quota 'nope'"}]
    jobs = [{"quota": "nope", "gpu": 1, "command": ["x"]}, {"quota": "gone", "gpu": 1, "command": ["x"]}]
    r = client.post(f"{API}/jobs/batch", headers=admin_headers, json={"jobs": jobs})
    assert r.status_code == 404
    assert [e["field"] for e in r.json()["errors"]] == ["jobs.0.quota", "jobs.1.quota"]


def test_the_job_schema_states_the_env_names_label_keys_and_a_batch_of_at_least_one():
    """The schema refused nothing of what the server refuses here, so valid-looking requests got 422: reserved or
    malformed env names, label keys with control characters, an empty batch."""
    from allotment.workloads.schemas import JobBatchIn, JobIn

    props = JobIn.model_json_schema()["properties"]
    env = next(s for s in props["env"]["anyOf"] if s.get("type") == "object")
    assert env["propertyNames"]["pattern"] == "^[A-Za-z_][A-Za-z0-9_]*$"
    assert {"pattern": "^ALLOT_"} in env["propertyNames"]["not"]["anyOf"]
    labels = next(s for s in props["labels"]["anyOf"] if s.get("type") == "object")
    assert "\\x00-\\x1f" in labels["propertyNames"]["pattern"]
    assert JobBatchIn.model_json_schema()["properties"]["jobs"]["minItems"] == 1


def test_resource_policy_caps_state_their_bounds_and_the_server_holds_text_to_them(client, admin_headers):
    """Counts and amounts given as text were free strings in the schema while the server refused most of them; the
    schema now states the forms and bounds, and the server reads text by the same pattern."""
    from allotment.policies.schemas import PolicyBody

    props = PolicyBody.model_json_schema()["properties"]
    cpu = next(s for s in props["cpu"]["anyOf"] if s.get("type") == "string")
    assert "pattern" in cpu
    concurrent = next(s for s in props["concurrent_jobs"]["anyOf"] if s.get("type") == "integer")
    assert concurrent["maximum"] == 100
    ok = client.post("/api/v1/resource-policies", headers=admin_headers, json={
        "name": "texty", "cpu": "500m", "memory": "64Gi", "fgpu": "0.5", "concurrent_jobs": "5"})
    assert ok.status_code == 201, ok.text
    bad = client.post("/api/v1/resource-policies", headers=admin_headers, json={
        "name": "odd", "cpu": "8Gi", "concurrent_jobs": "005", "fgpu": 0.5})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"cpu", "concurrent_jobs", "fgpu"}
    unnamed = client.post("/api/v1/resource-policies", headers=admin_headers, json={"cpu": "8"})
    assert unnamed.status_code == 422 and unnamed.json()["errors"][0]["field"] == "name"


def test_the_time_limit_schema_states_only_durations_the_server_reads():
    """The text form of a time limit was any string, so Schemathesis sent text the server refused; and 0 seconds was
    allowed by the schema while the server wants a limit longer than zero."""
    import re

    from allotment.api.fields import DURATION_REGEX
    from allotment.workloads.requests import parse_duration
    from allotment.workloads.schemas import JobIn

    variants = JobIn.model_json_schema()["properties"]["time_limit"]["anyOf"]
    assert any(v.get("minimum") == 1 for v in variants) and any(v.get("pattern") == DURATION_REGEX for v in variants)
    pattern = re.compile(DURATION_REGEX)
    for text in ("1", "90m", "2h", "366d", "31622400s"):
        assert pattern.fullmatch(text) and parse_duration(text)[1] is None, text
    for text in ("0", "0h", "367d", "31622401", "k\\x15"):
        assert not pattern.fullmatch(text), text
