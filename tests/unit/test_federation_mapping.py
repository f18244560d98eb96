"""Mapping a provider's claims or SAML attributes to a user: table-tested."""

from __future__ import annotations

import pytest

from allotment.federation.mapping import (
    OAUTH2_DEFAULTS,
    OIDC_DEFAULTS,
    SAML_DEFAULTS,
    MappingError,
    map_user,
    username_candidate,
)


@pytest.mark.parametrize(("claims", "mapping", "subject", "expected"), [
    ({"sub": "1", "email": "a@x.io", "name": "Ann", "groups": ["ml", "ml", " ops "], "email_verified": True},
     OIDC_DEFAULTS, None, {"user_id": "1", "email": "a@x.io", "name": "Ann", "groups": ["ml", "ops"],
                           "email_verified": True}),
    # the full name falls back to given + family name; email_verified as text
    ({"sub": "2", "given_name": "Bo", "family_name": "Li", "email_verified": "false"}, OIDC_DEFAULTS, None,
     {"user_id": "2", "name": "Bo Li", "email_verified": False, "groups": []}),
    # GitHub-style: a numeric id, login and avatar
    ({"id": 42, "login": "octo", "avatar_url": "https://a/x.png", "email": None}, OAUTH2_DEFAULTS, None,
     {"user_id": "42", "username": "octo", "picture": "https://a/x.png", "email": None}),
    # nested claims by a dotted name; groups as one space- or comma-separated text
    ({"sub": "3", "profile": {"mail": "c@x.io"}, "roles": "a, b c"},
     {**OIDC_DEFAULTS, "email": "profile.mail", "groups": "roles"}, None,
     {"email": "c@x.io", "groups": ["a", "b", "c"]}),
    # SAML: attributes are lists; the NameID is the user id unless an attribute is named
    ({"mail": ["d@x.io"], "uid": ["dee"], "isMemberOf": ["g1", "g2"]}, SAML_DEFAULTS, "name-id-9",
     {"user_id": "name-id-9", "email": "d@x.io", "username": "dee", "groups": ["g1", "g2"], "email_verified": None}),
])
def test_map_user(claims, mapping, subject, expected):
    mapped = map_user(claims, mapping, subject).as_dict()
    assert {k: mapped[k] for k in expected} == expected


@pytest.mark.parametrize(("claims", "mapping", "subject"), [
    ({"email": "a@x.io"}, OIDC_DEFAULTS, None),
    ({"sub": ""}, OIDC_DEFAULTS, None),
    ({"sub": {"nested": 1}}, OIDC_DEFAULTS, None),
    ({"mail": ["a@x.io"]}, SAML_DEFAULTS, None),
])
def test_no_user_id_is_an_error_naming_the_claim(claims, mapping, subject):
    with pytest.raises(MappingError, match="no user id"):
        map_user(claims, mapping, subject)


@pytest.mark.parametrize(("claims", "expected"), [
    ({"sub": "1", "preferred_username": "ann.lee"}, "ann.lee"),
    ({"sub": "1", "email": "bo+gpu@x.io"}, "bo-gpu"),
    ({"sub": "auth0|123"}, "auth0-123"),
    ({"sub": "1", "preferred_username": "  !!  "}, "user"),
])
def test_username_candidate(claims, expected):
    assert username_candidate(map_user(claims, OIDC_DEFAULTS)) == expected
