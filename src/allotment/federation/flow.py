"""A login through an identity provider, from the redirect to the provider to a local session.

1. `begin` records the login in flight (PendingSsoLogin: a digest of its state, the nonce, the PKCE verifier sealed,
   or the SAML request id) and returns the provider's URL. The console binds the state to the browser with a
   cookie, so a callback that the browser did not start is refused (login CSRF).
2. `finish_oauth` / `finish_saml` take the provider's answer, check it (oidc.py / saml.py: no database held while the
   provider is called) and then, by purpose:
   - console and CLI: `sign_in` applies the local rules (e-mail verified, existing or invited users unless the
     connection creates users, inactive and locked accounts refused, group sync) and opens a session through the
     same path as a password sign-in (identity.service.open_session), audited; refusals are audited too. The CLI
     gets a one-time code at its loopback address, which it exchanges (with its PKCE verifier) for the token.
   - test: the mapped user (or the provider's error) is kept for the admin who ran Test Provider; nobody signs in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as random_secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from allotment.api.state import AppState
from allotment.audit import service as audit
from allotment.db import utcnow
from allotment.errors import Conflict, DomainError, NotFound, Unauthenticated, ValidationFailed
from allotment.federation import connections, oidc, saml
from allotment.federation.mapping import MappedUser, username_candidate
from allotment.federation.models import (
    SAML,
    FederatedGroupGrant,
    FederatedIdentity,
    IdentityConnection,
    PendingSsoLogin,
)
from allotment.identity import groups as identity_groups
from allotment.identity import lockout
from allotment.identity import service as identity
from allotment.identity.models import USER, Group, GroupMember, User
from allotment.identity.secrets import token_digest
from allotment.inventory.sealing import SecretsUnreadable, seal, unseal

PENDING_TTL = timedelta(minutes=10)
CLI_CODE_TTL = timedelta(minutes=2)
CONSOLE, CLI, TEST = "console", "cli", "test"


@dataclass(frozen=True)
class Draft:
    """A connection as Test Provider runs it: saved or not."""

    id: int | None
    name: str
    protocol: str
    settings: dict[str, Any]
    secrets: dict[str, str]
    ref_id: int | None = None  # the saved connection an unsaved draft edits (its SP metadata URL)


@dataclass(frozen=True)
class Finished:
    purpose: str
    next: str = "/ui/"
    token: str | None = None
    cli_redirect: str | None = None
    test_id: int | None = None


REFUSAL_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden"}


class LoginRefused(DomainError):
    def __init__(self, detail: str, status: int = 401):
        super().__init__(detail, [], status, REFUSAL_TITLES[status], "sso_login_refused")


def draft_of(secret_key: str, connection: IdentityConnection) -> Draft:
    return Draft(connection.id, connection.name, connection.protocol, dict(connection.settings),
                 connections.secrets_of(secret_key, connection))


def _digest(secret_key: str, value: str) -> str:
    return token_digest(secret_key, "sso:" + value)


def s256(verifier: str) -> str:
    import base64

    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode("ascii")


def begin(state: AppState, draft: Draft, purpose: str, base_url: str, next_page: str = "/ui/",
          cli: dict[str, Any] | None = None, admin_id: int | None = None) -> tuple[str, str, int]:
    """Record a login in flight; return (the provider's URL, the state to bind to the browser, the record's id)."""
    base = connections.public_base(draft.settings, base_url)
    login_state = random_secrets.token_urlsafe(32)
    flow: dict[str, Any] = {"next": next_page, "base": base}
    sealed: dict[str, str] = {}
    if cli:
        flow["cli"] = cli
    if draft.protocol == SAML:
        sp_entity_id = draft.settings.get("entity_id") or base + connections.metadata_path(draft.id or draft.ref_id or 0)
        acs_url = base + connections.ACS_PATH
        url, request_id = saml.redirect_url(draft.settings, draft.secrets, sp_entity_id, acs_url, login_state)
        flow.update(request_id=request_id, sp_entity_id=sp_entity_id, acs_url=acs_url)
    else:
        values = oidc.new_flow_values(draft.settings)
        redirect_uri = base + connections.CALLBACK_PATH
        url = oidc.authorization_url(draft.settings, draft.secrets, draft.protocol, redirect_uri, login_state,
                                     values["nonce"], values["code_verifier"])
        flow.update(nonce=values["nonce"], redirect_uri=redirect_uri)
        if values["code_verifier"]:
            sealed["code_verifier"] = values["code_verifier"]
    if draft.id is None:  # an unsaved connection under test travels with its login
        flow["draft"] = {"name": draft.name, "protocol": draft.protocol, "settings": draft.settings}
        sealed.update({f"secret:{k}": v for k, v in draft.secrets.items()})
    now = utcnow()
    with state.sessions() as session:
        session.execute(delete(PendingSsoLogin).where(PendingSsoLogin.expires_at < now))
        pending = PendingSsoLogin(state_hash=_digest(state.secret_key, login_state), connection_id=draft.id,
                                  purpose=purpose, flow=flow, sealed=seal(state.secret_key, sealed),
                                  admin_id=admin_id, expires_at=now + PENDING_TTL)
        session.add(pending)
        session.commit()
        return url, login_state, pending.id


def _pending(state: AppState, login_state: str | None, browser_state: str | None = None, check_browser: bool = True
             ) -> tuple[int, PendingSsoLogin, Draft, dict[str, str]]:
    """The login in flight named by `login_state`, and the connection it runs (refused when unknown or expired).

    A login that signs someone in must come back to the browser that started it (`browser_state`, the cookie set
    when it began): otherwise anyone could sign a victim's browser in as themselves. SAML answers are cross-site
    POSTs, which a SameSite=Lax cookie does not accompany; they are bound to the request id instead."""
    if not login_state:
        raise LoginRefused("the provider's answer names no login (state or RelayState missing); start again", 400)
    with state.sessions() as session:
        pending = session.scalar(select(PendingSsoLogin).where(
            PendingSsoLogin.state_hash == _digest(state.secret_key, login_state),
            PendingSsoLogin.code_hash.is_(None), PendingSsoLogin.result.is_(None)))
        if pending is None or pending.expires_at <= utcnow():
            raise LoginRefused("this sign-in has expired or was already used; start again from the login page")
        try:
            sealed = unseal(state.secret_key, pending.sealed)
        except SecretsUnreadable as exc:
            raise LoginRefused("this sign-in cannot be read any more (the server's key changed); start again") from exc
        if pending.connection_id is not None:
            connection = session.get(IdentityConnection, pending.connection_id)
            if connection is None or (pending.purpose != TEST and not connection.active):
                raise LoginRefused("this identity provider connection is not active", 403)
            draft = draft_of(state.secret_key, connection)
        else:
            d = pending.flow["draft"]
            draft = Draft(None, d["name"], d["protocol"], d["settings"],
                          {k.removeprefix("secret:"): v for k, v in sealed.items() if k.startswith("secret:")})
        if check_browser and pending.purpose != TEST and not (
                browser_state and hmac.compare_digest(browser_state, login_state)):
            raise LoginRefused("this sign-in was not started in this browser; start again from the login page", 403)
        session.expunge(pending)
        return pending.id, pending, draft, sealed


def _use_up(state: AppState, pending_id: int) -> None:
    """A login in flight is answered once: a replayed callback finds nothing."""
    with state.sessions() as session:
        row = session.get(PendingSsoLogin, pending_id)
        if row is not None:
            session.delete(row)
        session.commit()


def finish_oauth(state: AppState, login_state: str | None, code: str | None, error: str | None,
                 error_description: str | None, source: str | None, browser_state: str | None) -> Finished:
    pending_id, pending, draft, sealed = _pending(state, login_state, browser_state)
    try:
        if error:
            raise oidc.ProviderError(f"the provider answered {error}: {error_description or 'no description'}")
        if not code:
            raise oidc.ProviderError("the provider's answer has no authorization code")
        if draft.protocol == SAML:
            raise oidc.ProviderError("this login is a SAML one: its answer goes to the ACS URL")
        mapped = oidc.complete(draft.settings, draft.secrets, draft.protocol, pending.flow["redirect_uri"], code,
                               sealed.get("code_verifier"), pending.flow.get("nonce"))
    except oidc.ProviderError as exc:
        return _failed(state, pending_id, pending, draft, str(exc), source)
    return _succeeded(state, pending_id, pending, draft, mapped, source)


def finish_saml(state: AppState, relay_state: str | None, saml_response: str | None, source: str | None) -> Finished:
    pending_id, pending, draft, _ = _pending(state, relay_state, check_browser=False)
    try:
        if draft.protocol != SAML or not saml_response:
            raise oidc.ProviderError("the ACS expects a SAMLResponse for a SAML login")
        mapped = saml.complete(draft.settings, draft.secrets, pending.flow["sp_entity_id"], pending.flow["acs_url"],
                               saml_response, pending.flow["request_id"])
    except oidc.ProviderError as exc:
        return _failed(state, pending_id, pending, draft, str(exc), source)
    return _succeeded(state, pending_id, pending, draft, mapped, source)


def _record_test(state: AppState, pending_id: int, result: dict[str, Any]) -> Finished:
    with state.sessions() as session:
        row = session.get(PendingSsoLogin, pending_id)
        row.result = result
        row.sealed = None
        row.expires_at = utcnow() + PENDING_TTL
        session.commit()
    return Finished(TEST, test_id=pending_id)


def _failed(state: AppState, pending_id: int, pending: PendingSsoLogin, draft: Draft, message: str,
            source: str | None) -> Finished:
    if pending.purpose == TEST:
        return _record_test(state, pending_id, {"status": "error", "error": message, "connection": draft.name})
    _use_up(state, pending_id)
    with state.sessions() as session:
        audit.record(session, None, "auth.sso_failed", "identity_connection", draft.name, draft.id,
                     changes={"after": {"reason": message[:500]}}, source=source)
        session.commit()
    raise LoginRefused(f"sign-in through {draft.name} failed: {message}")


def _succeeded(state: AppState, pending_id: int, pending: PendingSsoLogin, draft: Draft, mapped: MappedUser,
               source: str | None) -> Finished:
    if pending.purpose == TEST:
        return _record_test(state, pending_id, {"status": "ok", "user": mapped.as_dict(), "connection": draft.name,
                                                "claims": sorted(mapped.claims)})
    _use_up(state, pending_id)
    s = state.settings
    with state.sessions() as session:
        connection = session.get(IdentityConnection, draft.id)
        try:
            _user, token = sign_in(session, connection, mapped, source, state.secret_key, s.session_hours,
                                   s.login_max_failures, s.login_lock_minutes)
        except DomainError:
            session.commit()  # keep the audit of the refusal
            raise
        session.commit()
    if pending.purpose == CLI:
        cli = pending.flow["cli"]
        code = random_secrets.token_urlsafe(32)
        with state.sessions() as session:
            session.add(PendingSsoLogin(state_hash=_digest(state.secret_key, "cli-state:" + code),
                                        connection_id=draft.id, purpose=CLI, flow={"challenge": cli["challenge"]},
                                        sealed=seal(state.secret_key, {"token": token}),
                                        code_hash=_digest(state.secret_key, code),
                                        expires_at=utcnow() + CLI_CODE_TTL))
            session.commit()
        return Finished(CLI, cli_redirect=f"http://127.0.0.1:{int(cli['port'])}/callback?code={code}"
                                          f"&state={cli['state']}")
    return Finished(CONSOLE, next=pending.flow.get("next") or "/ui/", token=token)


def exchange_cli_code(state: AppState, code: str, code_verifier: str) -> str:
    """The session token for the CLI's one-time code, once, with the verifier of the challenge it started with."""
    with state.sessions() as session:
        row = session.scalar(select(PendingSsoLogin).where(PendingSsoLogin.code_hash == _digest(state.secret_key,
                                                                                                code)))
        if row is None or row.expires_at <= utcnow():
            raise Unauthenticated("this sign-in code is unknown, expired or already used; run allot login again")
        if s256(code_verifier) != row.flow.get("challenge"):
            raise Unauthenticated("the code verifier does not match the challenge this sign-in started with")
        token = unseal(state.secret_key, row.sealed)["token"]
        session.delete(row)
        session.commit()
    return token


def test_result(session: Session, test_id: int, admin_id: int) -> dict[str, Any]:
    row = session.get(PendingSsoLogin, test_id)
    if row is None or row.purpose != TEST or row.admin_id != admin_id:
        raise NotFound(f"provider test {test_id} does not exist (tests are kept for 10 minutes)")
    if row.result is None:
        return {"status": "pending", "connection": (row.flow.get("draft") or {}).get("name")}
    return dict(row.result)


# --- the local rules ----------------------------------------------------------------------------------------------

def _refuse(session: Session, connection: IdentityConnection, user: User | None, reason: str, source: str | None,
            status: int = 401) -> LoginRefused:
    actor = identity.as_principal(user) if user is not None else None
    audit.record(session, actor, "auth.login_failed", "user" if user else "identity_connection",
                 user.username if user else connection.name, user.id if user else connection.id,
                 changes={"after": {"via": f"sso:{connection.name}", "reason": reason}}, source=source)
    return LoginRefused(f"sign-in through {connection.name} refused: {reason}", status)


def _unique_username(session: Session, mapped: MappedUser) -> str:
    base = username_candidate(mapped)
    if base.isdigit():
        base = f"user-{base}"
    for n in range(1, 1000):
        name = base if n == 1 else f"{base}-{n}"
        if identity.check_username(name) == [] and session.scalar(
                select(User.id).where(User.username_key == name.lower())) is None:
            return name
    raise Conflict(f"no free username derived from {base}")


def _create(session: Session, connection: IdentityConnection, mapped: MappedUser, source: str | None) -> User:
    password = random_secrets.token_urlsafe(24) + "a1!"  # satisfies the rules, then removed: no password sign-in
    try:
        user = identity.create_user(session, email=mapped.email or "", username=_unique_username(session, mapped),
                                    password=password, full_name=(mapped.name or None) and mapped.name[:64])
    except ValidationFailed as exc:
        raise _refuse(session, connection, None, f"cannot create the account ({exc.detail})", source) from exc
    user.password_hash = None
    session.flush()
    audit.record(session, None, "user.create", "user", user.username, user.id,
                 changes={"after": {**identity.snapshot(user), "via": f"sso:{connection.name}"}}, source=source)
    return user


def sign_in(session: Session, connection: IdentityConnection, mapped: MappedUser, source: str | None,
            secret_key: str, session_hours: int, max_failures: int, lock_minutes: int) -> tuple[User, str]:
    """The local user for the provider's answer, under the local rules, with a new session token."""
    settings = connection.settings
    vouched = connection.protocol == SAML or mapped.email_verified is True
    if settings.get("require_email_verified") and connection.protocol != SAML and mapped.email_verified is not True:
        raise _refuse(session, connection, None, "the provider does not say that the e-mail address "
                      f"{mapped.email or '(none)'} is verified (email_verified)", source)
    link = session.scalar(select(FederatedIdentity).where(FederatedIdentity.connection_id == connection.id,
                                                          FederatedIdentity.subject == mapped.user_id))
    user = session.get(User, link.user_id) if link else None
    if user is None and mapped.email and vouched:  # an existing or invited account, by its verified e-mail
        user = session.scalar(select(User).where(User.email_key == mapped.email.lower()))
    if user is None:
        if not settings.get("create_users", True):
            raise _refuse(session, connection, None, f"there is no account for {mapped.email or mapped.user_id} "
                          "here; ask an administrator to invite you", source, 403)
        if not mapped.email:
            raise _refuse(session, connection, None, "the provider gave no e-mail address to create the account "
                          "with", source)
        user = _create(session, connection, mapped, source)
    if user.kind != USER or user.deleted_at is not None:
        raise _refuse(session, connection, None, "service accounts cannot sign in", source, 403)
    if not user.is_active:
        raise _refuse(session, connection, user, "the account is inactive", source, 403)
    now = utcnow()
    if lockout.is_locked(user, now):
        raise _refuse(session, connection, user, "the account is locked after failed sign-ins until "
                      f"{user.locked_until.isoformat()} (a platform admin can unlock it)", source, 403)
    if link is None:
        link = FederatedIdentity(connection_id=connection.id, subject=mapped.user_id, user_id=user.id)
        session.add(link)
    link.email, link.picture, link.last_login_at = mapped.email, mapped.picture, now
    session.flush()
    if settings.get("sync_groups"):
        sync_groups(session, connection, user, mapped.groups, source)
    token = identity.open_session(session, user, source, secret_key, session_hours, now,
                                  via=f"sso:{connection.name}")
    return user, token


def sync_groups(session: Session, connection: IdentityConnection, user: User, names: tuple[str, ...],
                source: str | None) -> tuple[list[str], list[str]]:
    """Match the provider's groups to existing groups (by name, any case; never the built-in ones), add the user to
    them, and remove the memberships this connection granted that the provider no longer lists. Memberships an
    admin gave are neither recorded nor removed. Returns (joined, left)."""
    actor = identity.as_principal(user)
    keys = [n.lower() for n in names]
    wanted = {g.id: g for g in session.scalars(select(Group).where(func.lower(Group.name).in_(keys),
                                                                   Group.builtin.is_(False)))} if keys else {}
    granted = set(session.scalars(select(FederatedGroupGrant.group_id).where(
        FederatedGroupGrant.connection_id == connection.id, FederatedGroupGrant.user_id == user.id)))
    joined, left = [], []
    for group_id, group in wanted.items():
        if group_id in granted:
            continue
        if session.get(GroupMember, (group_id, user.id)) is not None:
            continue  # given by an admin: theirs to take away
        identity_groups.add_member(session, actor, group, user, source)
        session.add(FederatedGroupGrant(connection_id=connection.id, user_id=user.id, group_id=group_id))
        joined.append(group.name)
    for group_id in granted - set(wanted):
        session.execute(delete(FederatedGroupGrant).where(FederatedGroupGrant.connection_id == connection.id,
                                                          FederatedGroupGrant.user_id == user.id,
                                                          FederatedGroupGrant.group_id == group_id))
        group = session.get(Group, group_id)
        if group is not None and session.get(GroupMember, (group_id, user.id)) is not None:
            identity_groups.remove_member(session, actor, group, user, source)
            left.append(group.name)
    session.flush()
    return joined, left


def linked_accounts(session: Session, connection_id: int) -> list[dict[str, Any]]:
    rows = session.execute(select(FederatedIdentity, User.username).join(User, User.id == FederatedIdentity.user_id)
                           .where(FederatedIdentity.connection_id == connection_id)
                           .order_by(User.username)).all()
    return [{"username": name, "subject": link.subject, "email": link.email, "picture": link.picture,
             "last_login_at": link.last_login_at} for link, name in rows]
