"""Single sign-on through a real SAML 2.0 IdP: pysaml2's own Server, in process, signing with xmlsec1. A signed
assertion signs in (with group sync); a tampered one, an unsigned one, or one answering another request does not."""

from __future__ import annotations

import base64
import shutil
from urllib.parse import parse_qs, urlsplit

import pytest
from saml2 import BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from sso_helpers import API, create_connection
from user_helpers import audit_events

from allotment.federation.connections import generate_key_pair

pytestmark = pytest.mark.skipif(shutil.which("xmlsec1") is None,
                                reason="xmlsec1 is missing: scripts/test.sh installs it (scripts/ensure-package.sh)")
IDP = "https://idp.example.com/metadata"
PASSWORD_AUTHN = {"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}


class Idp:
    """pysaml2's IdP, configured with its own key pair and, once the SP exists, the SP's metadata."""

    def __init__(self, tmp_path):
        cert, key = generate_key_pair("idp.example.com")
        self.cert, self.key = tmp_path / "idp.crt", tmp_path / "idp.key"
        self.cert.write_text(cert)
        self.key.write_text(key)
        self.server = None

    def config(self, sp_metadata: str | None = None) -> IdPConfig:
        conf = {"entityid": IDP, "xmlsec_binary": shutil.which("xmlsec1"), "key_file": str(self.key),
                "cert_file": str(self.cert),
                "service": {"idp": {"endpoints": {"single_sign_on_service": [
                    ("https://idp.example.com/sso", BINDING_HTTP_REDIRECT)]},
                    "policy": {"default": {"lifetime": {"minutes": 15}, "attribute_restrictions": None,
                                           "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}}}}}
        if sp_metadata:
            conf["metadata"] = {"inline": [sp_metadata]}
        config = IdPConfig()
        config.load(conf)
        return config

    def metadata(self) -> str:
        return str(entity_descriptor(self.config()))

    def trust(self, sp_metadata: str) -> None:
        self.server = Server(config=self.config(sp_metadata))

    def answer(self, redirect: str, subject: str, attributes: dict, sign: bool = True) -> tuple[str, str, str]:
        """The IdP reads our request and answers it: (SAMLResponse, RelayState, the ACS URL it posts to)."""
        query = parse_qs(urlsplit(redirect).query)
        request = self.server.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message
        response = self.server.create_authn_response(
            attributes, in_response_to=request.id, destination=request.assertion_consumer_service_url,
            sp_entity_id=request.issuer.text, name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=subject),
            sign_assertion=sign, sign_response=sign, authn=PASSWORD_AUTHN)
        return (base64.b64encode(str(response).encode()).decode(), query["RelayState"][0],
                request.assertion_consumer_service_url)


@pytest.fixture
def idp(tmp_path):
    return Idp(tmp_path)


def saml_connection(client, admin_headers, idp: Idp, **settings) -> dict:
    conn = create_connection(client, admin_headers, {
        "name": "Corp SAML", "protocol": "saml", "provider": "custom",
        "settings": {"idp_metadata": idp.metadata(), **settings}})
    r = client.get(f"/login/sso/{conn['id']}/metadata")
    assert r.status_code == 200 and "AssertionConsumerService" in r.text
    assert conn["acs_url"] == "http://testserver/login/sso/acs"
    idp.trust(r.text)
    return conn


def start(client, conn) -> str:
    r = client.get(f"/login/sso/{conn['id']}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("https://idp.example.com/sso"), r.text
    return r.headers["location"]


SAM = {"mail": ["sam@example.com"], "displayName": ["Sam Spade"], "uid": ["sam"], "isMemberOf": ["ml"]}


def test_a_signed_assertion_signs_in_and_syncs_groups(client, admin_headers, app, idp):
    client.post(f"{API}/groups", json={"name": "ml"}, headers=admin_headers).raise_for_status()
    conn = saml_connection(client, admin_headers, idp, sync_groups=True)
    response, relay, acs = idp.answer(start(client, conn), "saml-sam", SAM)
    assert acs == "http://testserver/login/sso/acs"
    r = client.post("/login/sso/acs", data={"SAMLResponse": response, "RelayState": relay}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
    me = client.get(f"{API}/auth/whoami").json()
    assert me["username"] == "sam" and "ml" in me["groups"]
    assert [e.changes for e in audit_events(app, target="sam") if e.action == "auth.login"] == [
        {"after": {"via": "sso:Corp SAML"}}]
    # The same answer again (from a browser without the session) is refused: the request it answers has been used.
    client.cookies.clear()
    r = client.post("/login/sso/acs", data={"SAMLResponse": response, "RelayState": relay}, follow_redirects=False)
    assert r.status_code == 401


def test_a_tampered_assertion_is_refused(client, admin_headers, idp):
    conn = saml_connection(client, admin_headers, idp)
    response, relay, _ = idp.answer(start(client, conn), "saml-sam", SAM)
    xml = base64.b64decode(response).decode().replace("sam@example.com", "admin@example.com")
    r = client.post("/login/sso/acs", data={"SAMLResponse": base64.b64encode(xml.encode()).decode(),
                                            "RelayState": relay}, follow_redirects=False)
    assert r.status_code == 401 and "SignatureError" in r.text, r.text
    assert client.get(f"{API}/auth/whoami").status_code == 401


def test_an_unsigned_assertion_is_refused_when_signatures_are_required(client, admin_headers, idp):
    conn = saml_connection(client, admin_headers, idp)
    response, relay, _ = idp.answer(start(client, conn), "saml-sam", SAM, sign=False)
    r = client.post("/login/sso/acs", data={"SAMLResponse": response, "RelayState": relay}, follow_redirects=False)
    assert r.status_code == 401 and "refused" in r.text


def test_an_answer_to_another_request_is_refused(client, admin_headers, idp):
    conn = saml_connection(client, admin_headers, idp)
    response, _, _ = idp.answer(start(client, conn), "saml-sam", SAM)
    _, other_relay, _ = idp.answer(start(client, conn), "saml-sam", SAM)
    r = client.post("/login/sso/acs", data={"SAMLResponse": response, "RelayState": other_relay},
                    follow_redirects=False)
    assert r.status_code == 401


def test_requests_are_signed_with_a_generated_key_pair(client, admin_headers, idp):
    conn = create_connection(client, admin_headers, {
        "name": "Signed SAML", "protocol": "saml", "provider": "okta", "generate_key_pair": True,
        "settings": {"idp_metadata": idp.metadata(), "sign_requests": True, "entity_id": "https://gpu.example.com"}})
    assert conn["secrets"] == {"private_key": {"set": True}}
    assert conn["settings"]["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert conn["sp_entity_id"] == "https://gpu.example.com"
    metadata = client.get(f"/login/sso/{conn['id']}/metadata").text
    assert 'AuthnRequestsSigned="true"' in metadata
    query = parse_qs(urlsplit(start(client, conn)).query)
    assert query["Signature"] and "rsa-sha" in query["SigAlg"][0]


def test_the_idps_post_is_taken_while_the_browser_holds_a_session(client, admin_headers, idp):
    """An IdP on the same site as the console posts with the session cookie attached and no console form token: the
    answer is judged by its signature and the request it answers, as without a session, never turned away as CSRF."""
    conn = saml_connection(client, admin_headers, idp)
    response, relay, _ = idp.answer(start(client, conn), "saml-sam", SAM)
    r = client.post("/login/sso/acs", data={"SAMLResponse": response, "RelayState": relay}, follow_redirects=False)
    assert r.status_code == 303 and client.cookies  # signed in: the browser now holds a session
    response, relay, _ = idp.answer(start(client, conn), "saml-sam", SAM)
    r = client.post("/login/sso/acs", data={"SAMLResponse": response, "RelayState": relay}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/", r.text
    r = client.post("/login/sso/acs", data={"SAMLResponse": response, "RelayState": relay}, follow_redirects=False)
    assert r.status_code == 401  # a replay is still refused, by the flow and not by the form check
