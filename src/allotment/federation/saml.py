"""SAML 2.0 as a service provider, with pysaml2 and Debian's xmlsec1: the authentication request (HTTP-Redirect,
signed when the connection says so), the response at the ACS (HTTP-POST; signatures checked, an assertion required
to be signed when the connection says so) and our SP metadata for the IdP."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.mdstore import MetadataStore
from saml2.metadata import entity_descriptor

from allotment.federation.mapping import MappedUser, MappingError, map_user
from allotment.federation.oidc import ProviderError

IDP_SSO = "urn:oasis:names:tc:SAML:2.0:metadata:IDPSSODescriptor"


def xmlsec_binary() -> str:
    found = shutil.which("xmlsec1")
    if not found:
        raise ProviderError("SAML needs the xmlsec1 program, which is not installed on the server "
                            "(Debian: apt-get install xmlsec1)")
    return found


def _idp_ids(metadata_xml: str) -> list[str]:
    store = MetadataStore(None, None)
    store.imp({"inline": [metadata_xml]})
    return [entity for entity, descriptor in store.items() if descriptor.get("idpsso_descriptor")]


def metadata_problem(metadata_xml: str) -> str | None:
    """Why the IdP metadata cannot be used; None when it names exactly one identity provider."""
    try:
        idps = _idp_ids(metadata_xml)
    except Exception as exc:  # noqa: BLE001 - pysaml2 raises many kinds for unreadable XML
        return f"is not readable SAML metadata ({type(exc).__name__}: {str(exc)[:200]})"
    if len(idps) != 1:
        return f"must describe exactly one identity provider (IDPSSODescriptor); found {len(idps)}"
    return None


@contextmanager
def _client(settings: dict[str, Any], secrets: dict[str, str], sp_entity_id: str, acs_url: str
            ) -> Iterator[Saml2Client]:
    """A pysaml2 client for the connection. The signing key goes through a private temporary file, which xmlsec1
    needs, for as long as the client is used."""
    conf: dict[str, Any] = {
        "entityid": sp_entity_id,
        "xmlsec_binary": xmlsec_binary(),
        "metadata": {"inline": [settings["idp_metadata"]]},
        "allow_unknown_attributes": True,
        "service": {"sp": {
            "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
            "want_assertions_signed": bool(settings.get("require_signed_assertions", True)),
            "want_response_signed": False,
            "authn_requests_signed": bool(settings.get("sign_requests")),
            "allow_unsolicited": False,
        }},
    }
    with tempfile.TemporaryDirectory(prefix="allot-saml-") as tmp:
        if settings.get("sign_requests") and settings.get("certificate") and secrets.get("private_key"):
            key, cert = Path(tmp) / "sp.key", Path(tmp) / "sp.crt"
            key.touch(mode=0o600)
            key.write_text(secrets["private_key"])
            cert.write_text(settings["certificate"])
            conf["key_file"], conf["cert_file"] = str(key), str(cert)
            conf["encryption_keypairs"] = [{"key_file": str(key), "cert_file": str(cert)}]
        config = SPConfig()
        config.load(conf)
        yield Saml2Client(config)


def sp_metadata(settings: dict[str, Any], secrets: dict[str, str], sp_entity_id: str, acs_url: str) -> str:
    with _client(settings, secrets, sp_entity_id, acs_url) as client:
        return str(entity_descriptor(client.config))


def redirect_url(settings: dict[str, Any], secrets: dict[str, str], sp_entity_id: str, acs_url: str,
                 relay_state: str) -> tuple[str, str]:
    """(URL of the IdP with the authentication request, the request's id to expect in the response)."""
    with _client(settings, secrets, sp_entity_id, acs_url) as client:
        idps = _idp_ids(settings["idp_metadata"])
        try:
            request_id, info = client.prepare_for_authenticate(entityid=idps[0], relay_state=relay_state,
                                                               binding=BINDING_HTTP_REDIRECT)
        except Exception as exc:
            raise ProviderError(f"cannot build the SAML request: {exc}") from exc
    return dict(info["headers"])["Location"], request_id


def complete(settings: dict[str, Any], secrets: dict[str, str], sp_entity_id: str, acs_url: str,
             saml_response: str, request_id: str) -> MappedUser:
    """The user a posted SAML response describes, after pysaml2 checked its signatures, audience, destination,
    validity period and that it answers our request `request_id`."""
    with _client(settings, secrets, sp_entity_id, acs_url) as client:
        try:
            response = client.parse_authn_request_response(saml_response, BINDING_HTTP_POST,
                                                           outstanding={request_id: "/"})
        except Exception as exc:
            raise ProviderError(f"the SAML response was refused ({type(exc).__name__}: {str(exc)[:300]})") from exc
        if response is None:
            raise ProviderError("the SAML response was refused (empty or unreadable)")
        identity = response.get_identity() or {}
        name_id = response.name_id.text if response.name_id is not None else None
    try:
        return map_user(identity, settings.get("claims") or {}, subject=name_id)
    except MappingError as exc:
        raise ProviderError(str(exc)) from exc
