"""allotment's users and groups as SCIM resources, for scim2-server's protocol handling.

scim2-server validates requests, applies PUT and PATCH to the stored resource, filters with the parsed filter and
builds the responses; this storage turns resources into calls of the identity services, so SCIM follows the same
rules as the API (name rules, look-alike refusal, the last admin, auditing). What SCIM must not do here:
- delete a user: DELETE (and active=false) deactivates through identity.service.deactivate_user with stop_jobs, as
  an identity provider expects a deprovisioned person's work to stop; jobs, usage and audit stay. A DELETEd user is
  recorded in scim_removals and is then absent from SCIM (404), as RFC 7644 §3.6 requires.
- touch the built-in groups (`users`, `admins`): they are not SCIM resources at all; a group of the same name is
  refused as taken.
- delete what a group granted beyond itself other than through groups.delete_group(force=True), which removes only
  what was granted through the group.
"""

from __future__ import annotations

import secrets
from typing import Any

from scim2_models import (
    ConflictException,
    InvalidValueException,
    NotFoundException,
    ResourceType,
    ResponseParameters,
    SCIMException,
    SearchRequest,
    UniquenessException,
)
from scim2_server.storage import ScimStorage, SearchPage
from sqlalchemy import select
from sqlalchemy.orm import Session

from allotment.api.state import mark_identity_changed
from allotment.audit import service as audit
from allotment.core.names import as_id
from allotment.errors import Conflict, DomainError, NotFound, ValidationFailed
from allotment.federation.scim.clients import Caller
from allotment.federation.scim.models import ScimExternalId, ScimRemoval
from allotment.federation.scim.provider import provider
from allotment.identity import groups as group_service
from allotment.identity import service as users
from allotment.identity.models import USER, Group, GroupMember, User

SOURCE = "scim"


def _scim_error(exc: DomainError) -> SCIMException:
    """The SCIM error for a service refusal, its sentence kept as the detail."""
    if isinstance(exc, Conflict):
        # A name or address in use (or one that looks like one in use) is SCIM's uniqueness error; any other
        # conflict with the current state (the last platform admin) a plain 409.
        unique = any(word in exc.detail for word in ("taken", "exists", "registered", "looks different"))
        return UniquenessException(detail=exc.detail) if unique else ConflictException(detail=exc.detail)
    if isinstance(exc, NotFound):
        return NotFoundException(detail=exc.detail)
    if isinstance(exc, ValidationFailed):
        return InvalidValueException(detail=exc.detail)
    return InvalidValueException(detail=exc.detail)


def _new_password() -> str:
    """A password nobody knows, for users provisioned without one (they sign in through single sign-on)."""
    return secrets.token_urlsafe(24) + "a1!"


class AllotmentStorage(ScimStorage):
    """One request's storage: the database session of the request and the client acting."""

    def __init__(self, session: Session, caller: Caller | None):
        """`caller` is None only for ServiceProviderConfig, which reads no resource."""
        self.session = session
        self.caller = caller
        self.actor = caller.principal if caller is not None else None
        self.provider = provider()

    # -- reading --------------------------------------------------------------------------------------------------

    def _model(self, name: str):
        return self.provider.model_for(next(rt for rt in self.provider.resource_types if rt.name == name))

    def _removed_ids(self) -> set[int]:
        return set(self.session.scalars(select(ScimRemoval.user_id)))

    def _user(self, resource_id: str | None) -> User:
        user = self.session.get(User, as_id(resource_id or "") or 0)
        if user is None or user.kind != USER or self.session.get(ScimRemoval, user.id) is not None:
            raise NotFoundException(detail=f"User {resource_id!r} not found")
        return user

    def _group(self, resource_id: str | None) -> Group:
        group = self.session.get(Group, as_id(resource_id or "") or 0)
        if group is None or group.builtin:
            raise NotFoundException(detail=f"Group {resource_id!r} not found")
        return group

    def _external_ids(self, resource_type: str) -> dict[int, str]:
        return dict(self.session.execute(select(ScimExternalId.object_id, ScimExternalId.external_id)
                                         .where(ScimExternalId.resource_type == resource_type)).all())

    def _external_id(self, resource_type: str, object_id: int) -> str | None:
        row = self.session.get(ScimExternalId, (resource_type, object_id))
        return row.external_id if row is not None else None

    def _keep_external_id(self, resource_type: str, object_id: int, external_id: str | None) -> None:
        if external_id is not None and len(external_id) > 255:
            raise InvalidValueException(detail="externalId: must be at most 255 characters long")
        row = self.session.get(ScimExternalId, (resource_type, object_id))
        if external_id is None:
            if row is not None:
                self.session.delete(row)
        elif row is None:
            self.session.add(ScimExternalId(resource_type=resource_type, object_id=object_id,
                                            external_id=external_id))
        else:
            row.external_id = external_id
        self.session.flush()

    def _user_resource(self, user: User, group_rows: list[tuple[int, str]], external_id: str | None) -> Any:
        return self._model("User").model_validate({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": str(user.id), "externalId": external_id, "userName": user.username,
            "name": {"formatted": user.full_name} if user.full_name else None,
            "active": user.is_active,
            "emails": [{"value": user.email}] if user.email else None,
            "groups": [{"value": str(gid), "display": name, "$ref": f"Groups/{gid}"} for gid, name in group_rows]
            or None,
            "meta": {"resourceType": "User", "created": user.created_at, "lastModified": user.updated_at},
        })

    def _group_resource(self, group: Group, members: list[User], external_id: str | None) -> Any:
        return self._model("Group").model_validate({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": str(group.id), "externalId": external_id, "displayName": group.name,
            "members": [{"value": str(u.id), "$ref": f"Users/{u.id}", "type": "User"}
                        for u in members] or None,
            "meta": {"resourceType": "Group", "created": group.created_at, "lastModified": group.created_at},
        })

    def _all_users(self) -> list[Any]:
        removed = self._removed_ids()
        memberships: dict[int, list[tuple[int, str]]] = {}
        for user_id, group_id, name in self.session.execute(
                select(GroupMember.user_id, Group.id, Group.name).join(Group, Group.id == GroupMember.group_id)
                .where(Group.builtin.is_(False)).order_by(Group.name)):
            memberships.setdefault(user_id, []).append((group_id, name))
        people = self.session.scalars(select(User).where(User.kind == USER).order_by(User.id))
        external = self._external_ids("User")
        return [self._user_resource(u, memberships.get(u.id, []), external.get(u.id))
                for u in people if u.id not in removed]

    def _all_groups(self) -> list[Any]:
        removed = self._removed_ids()
        members: dict[int, list[User]] = {}
        for group_id, user in self.session.execute(
                select(GroupMember.group_id, User).join(User, User.id == GroupMember.user_id)
                .where(User.kind == USER).order_by(User.username_key)):
            if user.id not in removed:
                members.setdefault(group_id, []).append(user)
        groups = self.session.scalars(select(Group).where(Group.builtin.is_(False)).order_by(Group.id))
        external = self._external_ids("Group")
        return [self._group_resource(g, members.get(g.id, []), external.get(g.id)) for g in groups]

    def _read(self, name: str, resource_id: str) -> Any:
        if name == "User":
            user = self._user(resource_id)
            rows = self.session.execute(
                select(Group.id, Group.name).join(GroupMember, GroupMember.group_id == Group.id)
                .where(GroupMember.user_id == user.id, Group.builtin.is_(False)).order_by(Group.name)).all()
            return self._user_resource(user, [tuple(r) for r in rows], self._external_id("User", user.id))
        group = self._group(resource_id)
        removed = self._removed_ids()
        return self._group_resource(group, [u for u in group_service.members(self.session, group)
                                            if u.kind == USER and u.id not in removed],
                                    self._external_id("Group", group.id))

    def get(self, resource_type: ResourceType, resource_id: str, *,
            response_parameters: ResponseParameters[Any] | None = None) -> Any:
        return self._read(resource_type.name, resource_id)

    def search(self, resource_types: list[ResourceType], search_request: SearchRequest[Any], *,
               position: Any = None) -> SearchPage:
        """Filters, sorts and pages in memory with scim2-models' filter: a site's directory is thousands of people,
        which this handles in milliseconds, and the filter language is then complete."""
        found: list[Any] = []
        for name in dict.fromkeys(rt.name for rt in resource_types):
            found.extend(self._all_users() if name == "User" else self._all_groups())
        scim_filter = search_request.filter
        if scim_filter is not None:
            found = [r for r in found if scim_filter.match(r)]
        if search_request.sort_by is not None:
            keyed = [(search_request.sort_value(r), r) for r in found]
            present = sorted((p for p in keyed if p[0] is not None), key=lambda p: p[0],
                             reverse=search_request.sort_order == SearchRequest.SortOrder.descending)
            found = [r for _, r in present] + [r for v, r in keyed if v is None]
        start = search_request.start_index_0 or 0
        stop = None if search_request.count is None else start + search_request.count
        return SearchPage(len(found), found[start:stop])

    # -- writing --------------------------------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Any) -> Any:
        try:
            if resource_type.name == "User":
                return self._create_user(resource)
            return self._create_group(resource)
        except DomainError as exc:
            raise _scim_error(exc) from None

    def update(self, resource_type: ResourceType, resource: Any, *, expected_version: str | None = None) -> Any:
        try:
            if resource_type.name == "User":
                return self._update_user(resource)
            return self._update_group(resource)
        except DomainError as exc:
            raise _scim_error(exc) from None

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version: str | None = None) -> None:
        try:
            if resource_type.name == "User":
                self._remove_user(self._user(resource_id))
            else:
                group = self._group(resource_id)
                group_service.delete_group(self.session, self.actor, group, SOURCE, force=True)
        except DomainError as exc:
            raise _scim_error(exc) from None

    @staticmethod
    def _email(resource: Any) -> str | None:
        """The first address: allotment keeps one, and the schema announces no `primary` to choose by."""
        emails = resource.emails or []
        return str(emails[0].value) if emails and emails[0].value else None

    @staticmethod
    def _full_name(resource: Any) -> str | None:
        return resource.name.formatted if resource.name is not None and resource.name.formatted else None

    def _create_user(self, resource: Any) -> Any:
        email = self._email(resource)
        if email is None:
            raise InvalidValueException(detail="emails: an allotment user needs an e-mail address")
        user = users.register_user(
            self.session, self.actor, SOURCE, email=email, username=resource.user_name or "",
            password=resource.password or _new_password(), full_name=self._full_name(resource),
            is_active=resource.active is not False)
        self._keep_external_id("User", user.id, resource.external_id)
        return self._read("User", str(user.id))

    def _update_user(self, resource: Any) -> Any:
        user = self._user(resource.id)
        email = self._email(resource)
        if email is not None and email != user.email:
            self._change_email(user, email)
        changes: dict[str, Any] = {}
        if resource.user_name and resource.user_name != user.username:
            changes["username"] = resource.user_name
        if self._full_name(resource) != user.full_name:
            changes["full_name"] = self._full_name(resource)
        if resource.password:
            changes["password"] = resource.password
        if changes:
            users.update_user(self.session, self.actor, user, changes, SOURCE, confirmations=None)
        if resource.active is False and user.is_active:
            users.deactivate_user(self.session, self.actor, user, SOURCE, stop_jobs=True)
        elif resource.active is True and not user.is_active:
            users.activate_user(self.session, self.actor, user, SOURCE)
        self._keep_external_id("User", user.id, resource.external_id)
        return self._read("User", str(user.id))

    def _change_email(self, user: User, email: str) -> None:
        """The identity provider owns a provisioned person's address, so SCIM may change what the API keeps fixed
        (a renamed mail domain must reach allotment); the address obeys the same rules as a new user's."""
        users.raise_field_problems({"email": users.check_email(email)})
        conflicts = users.uniqueness_problems(self.session, email, None, exclude_id=user.id)
        if conflicts:
            raise Conflict(conflicts[0].message, conflicts)
        before = {"email": user.email}
        user.email, user.email_key = email, email.lower()
        self.session.flush()
        audit.record(self.session, self.actor, "user.update", "user", user.username, user.id,
                     changes=audit.diff(before, {"email": email}), source=SOURCE)
        mark_identity_changed(self.session)

    def _remove_user(self, user: User) -> None:
        users.deactivate_user(self.session, self.actor, user, SOURCE, stop_jobs=True)
        self.session.add(ScimRemoval(user_id=user.id, client_id=self.caller.client_id if self.caller else None))
        self.session.flush()
        audit.record(self.session, self.actor, "user.scim_remove", "user", user.username, user.id,
                     changes={"before": None, "after": {"removed_through": self.actor.username,
                                                        "kept": "deactivated; jobs, usage and audit kept"}},
                     source=SOURCE)

    def _member_ids(self, resource: Any) -> set[int]:
        ids = set()
        for member in resource.members or []:
            user = self._user(member.value)  # an unknown member is refused, not skipped
            ids.add(user.id)
        return ids

    def _create_group(self, resource: Any) -> Any:
        wanted = self._member_ids(resource)
        group = group_service.create_group(self.session, self.actor, resource.display_name or "", None, SOURCE)
        for user_id in sorted(wanted):
            group_service.add_member(self.session, self.actor, group, self.session.get(User, user_id), SOURCE)
        self._keep_external_id("Group", group.id, resource.external_id)
        return self._read("Group", str(group.id))

    def _update_group(self, resource: Any) -> Any:
        group = self._group(resource.id)
        wanted = self._member_ids(resource)
        if resource.display_name and resource.display_name != group.name:
            group_service.update_group(self.session, self.actor, group, {"name": resource.display_name}, SOURCE)
        removed = self._removed_ids()
        current = {u.id for u in group_service.members(self.session, group) if u.kind == USER and u.id not in removed}
        for user_id in sorted(wanted - current):
            group_service.add_member(self.session, self.actor, group, self.session.get(User, user_id), SOURCE)
        for user_id in sorted(current - wanted):
            group_service.remove_member(self.session, self.actor, group, self.session.get(User, user_id), SOURCE)
        self._keep_external_id("Group", group.id, resource.external_id)
        return self._read("Group", str(group.id))
