"""What the SCIM server announces: the User and Group schemas trimmed to what allotment stores, the two resource
types and the service provider configuration (PATCH, filtering, sorting; no bulk, no ETags, no password change)."""

from __future__ import annotations

import functools

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Patch,
    Required,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
)
from scim2_server.utils import load_default_resource_types, load_default_schemas

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MAX_RESULTS = 1000
# allotment's user: a username, one e-mail address (its `type` and `primary` are accepted and not kept), a full name and whether it is active. `groups` is read-only
# (memberships are changed through Groups); `password` is write-only (a user provisioned without one signs in
# through single sign-on).
USER_ATTRIBUTES = {"userName": None, "name": {"formatted"}, "active": None, "password": None,
                   "emails": {"value"}, "groups": None}
# Every allotment user has an e-mail address (it is the account's identity).
# `active` too: a provider says whether the account is in use, and removing it would say nothing.
REQUIRED = {"emails", "emails.value", "active"}
# A member's `display` is its username, which the group does not choose: not an attribute a client sets.
GROUP_ATTRIBUTES = {"displayName": None, "members": {"value", "$ref", "type"}}


def _trim(schema, keep: dict):
    attributes = []
    for attribute in schema.attributes:
        if attribute.name not in keep:
            continue
        if keep[attribute.name] is not None and attribute.sub_attributes:
            attribute = attribute.model_copy(update={"sub_attributes": [
                s.model_copy(update={"required": Required.true}) if f"{attribute.name}.{s.name}" in REQUIRED else s
                for s in attribute.sub_attributes if s.name in keep[attribute.name]]})
        if attribute.name in REQUIRED:
            attribute = attribute.model_copy(update={"required": Required.true})
        attributes.append(attribute)
    return schema.model_copy(update={"attributes": attributes})


@functools.cache
def provider() -> ScimProvider:
    schemas = load_default_schemas()
    user = _trim(schemas[USER_SCHEMA], USER_ATTRIBUTES)
    group = _trim(schemas[GROUP_SCHEMA], GROUP_ATTRIBUTES)
    resource_types = [rt.model_copy(update={"schema_extensions": None})
                      for rt in load_default_resource_types().values()]
    config = ServiceProviderConfig(
        patch=Patch(supported=True), bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS), change_password=ChangePassword(supported=False),
        sort=Sort(supported=True), etag=ETag(supported=False),
        authentication_schemes=[AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken, name="Bearer token", primary=True,
            description="A provisioning client's token, issued with `allot admin scim token-issue`")])
    # Identity providers send more than allotment keeps (name.givenName, emails.type, phone numbers...): what the
    # schemas do not declare is ignored rather than refused, so provisioning does not stop at the first extra.
    return ScimProvider.from_discovery([user, group], resource_types, config=config,
                                       policy=ScimPolicy(unknown=ScimPolicy.Unknown.ignore))
