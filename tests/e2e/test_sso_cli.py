"""Single sign-on from the real `allot` against a real server and a real OIDC provider (oidc-provider-mock):
`allot sso create|list|show|test` and `allot login URL --sso NAME` through its loopback redirect. The browser's part
is played by an HTTP client that keeps cookies, as a browser does."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from e2e.clitools import _clean_env, allot, allot_executable, ok, unique
from integration.sso_helpers import oidc_provider, set_claims

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def issuer():
    with oidc_provider() as url:
        yield url


def browser_signs_in(start_url: str, sub: str) -> httpx.Response:
    """Follow the sign-in as a browser would, answering the provider's form as `sub`; returns the last answer."""
    with httpx.Client(timeout=15, follow_redirects=False) as browser:
        r = browser.get(start_url)
        assert r.status_code == 303, r.text
        r = browser.post(r.headers["location"], data={"sub": sub})
        assert r.status_code in (302, 303), r.text
        r = browser.get(r.headers["location"])  # our callback
        assert r.status_code == 303, r.text
        return browser.get(r.headers["location"])  # the CLI's loopback, or the console


def read_url(proc: subprocess.Popen) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if line.startswith("http"):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"allot printed no URL: {proc.stderr.read()}")


def test_admin_cli_and_login_with_sso(server, admin_config, issuer, tmp_path: Path):
    name = unique("CLI SSO")
    sub = unique("sub")
    username = unique("rita")
    set_claims(issuer, sub, email=f"{username}@example.com", email_verified=True, preferred_username=username)
    ok(allot("sso", "create", name, "--protocol", "oidc", "--provider", "keycloak", "--set", f"issuer={issuer}",
             "--set", "client_id=allotment", "--set", "claims.username=preferred_username",
             "--client-secret-stdin", input="cli-secret\n", config_dir=admin_config))
    listed = ok(allot("sso", "list", config_dir=admin_config)).stdout
    assert name in listed and "OIDC" in listed and "keycloak" in listed
    shown = ok(allot("sso", "show", name, config_dir=admin_config)).stdout
    assert "set (write-only)" in shown and "cli-secret" not in shown and "/login/sso/callback" in shown
    bad = allot("sso", "create", unique("x"), "--protocol", "oidc", "--set", "issuer=nope", config_dir=admin_config)
    assert bad.returncode == 1 and "issuer" in bad.stderr and "client_id" not in bad.stdout

    config_dir = tmp_path / "sso-cli"
    proc = subprocess.Popen([allot_executable(), "login", server.url, "--sso", name.lower(), "--no-browser",
                             "--sso-wait", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_clean_env(ALLOT_CONFIG_DIR=str(config_dir), COLUMNS="2000", NO_COLOR="1",
                                           TERM="dumb"))
    try:
        start = read_url(proc)
        assert "cli_port=" in start and "cli_challenge=" in start
        done = browser_signs_in(start, sub)
        assert done.status_code == 200 and "Signed in" in done.text
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"as {username}" in out
    assert username in ok(allot("whoami", config_dir=config_dir)).stdout

    missing = allot("login", server.url, "--sso", "no such provider", "--no-browser", config_dir=tmp_path / "x")
    assert missing.returncode == 1 and "offered: " in missing.stderr


def test_test_provider_from_the_cli(server, admin_config, issuer):
    name = unique("Tested")
    sub = unique("sub")
    set_claims(issuer, sub, email=f"{sub}@example.com", email_verified=True, name="Tess Ted", groups=["a", "b"])
    ok(allot("sso", "create", name, "--protocol", "oidc", "--set", f"issuer={issuer}", "--set", "client_id=c",
             "--client-secret-stdin", input="s\n", config_dir=admin_config))
    proc = subprocess.Popen([allot_executable(), "sso", "test", name, "--wait", "60", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_clean_env(ALLOT_CONFIG_DIR=str(admin_config), COLUMNS="2000", NO_COLOR="1",
                                           TERM="dumb"))
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            url = line.strip() if line.startswith("http") else None
        assert url, proc.stderr.read()
        with httpx.Client(timeout=15, follow_redirects=False) as browser:
            r = browser.post(url, data={"sub": sub})
            assert browser.get(r.headers["location"]).status_code == 303  # to the test's result page
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert '"email": "' + sub + '@example.com"' in out and '"groups": [' in out and "Tess Ted" in out
