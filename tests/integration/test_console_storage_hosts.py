"""The console's storage hosts page (platform admins): the local host listed, an S3 host added with its secret
never shown back, a field message, the test of an unreachable host reporting its error, a new secret, deletion; an
ordinary user is refused."""

from __future__ import annotations

from conftest import ADMIN_PASSWORD
from integration.test_web_console import csrf, make_user, sign_in

PAGE = "/ui/storage-hosts"


def post(client, action: str, **data):
    return client.post(action, data={**data, "csrf_token": csrf(client, PAGE)}, follow_redirects=False)


def test_the_storage_hosts_page(client, admin_headers):
    assert sign_in(client, "admin", ADMIN_PASSWORD).status_code == 303
    page = client.get(PAGE).text
    assert 'data-host="local"' in page
    r = post(client, PAGE, name="bucket", kind="s3", endpoint="http://127.0.0.1:1", bucket="data",
             access_key="AK1", secret_key="never-shown-secret")
    assert r.status_code == 303, r.text
    page = client.get(PAGE).text
    assert 'data-host="bucket"' in page and "never-shown-secret" not in page
    r = post(client, PAGE, name="bad", kind="s3", endpoint="ftp://x", bucket="b", access_key="a", secret_key="s")
    assert r.status_code == 422 and 'data-testid="errors-endpoint"' in r.text
    r = post(client, f"{PAGE}/bucket/test")
    assert r.status_code == 200 and 'data-testid="tested-bucket"' in r.text and "could not be reached" in r.text
    assert post(client, f"{PAGE}/bucket/secret", secret_key="another").status_code == 303
    assert post(client, f"{PAGE}/bucket/delete").status_code == 303
    assert 'data-host="bucket"' not in client.get(PAGE).text

    client.cookies.clear()
    make_user(client, admin_headers, "olly")
    assert sign_in(client, "olly", "Passw0rd!x").status_code == 303
    assert client.get(PAGE).status_code == 403
