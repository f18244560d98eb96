"""Password sign-in as the API and the console run it: throttled per source, one of a bounded number of argon2
verifications at a time, and off the event loop in its own transaction.

The order matters: the per-source limit is checked first (a refused attempt costs no hashing and no database), then
the sign-in waits for its turn in the event loop (holding no worker thread), and only then runs on a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from allotment.api.state import AppState
from allotment.errors import DomainError, TooManyRequests
from allotment.federation import password_policy
from allotment.identity import service, throttle
from allotment.identity.models import LoginSession
from allotment.identity.secrets import token_digest


@dataclass(frozen=True)
class SignedIn:
    username: str
    need_password_change: bool
    token: str
    expires_at: datetime


def _sign_in(state: AppState, username: str, password: str, source: str | None) -> SignedIn:
    s = state.settings
    with state.sessions() as session:
        try:
            password_policy.ensure_password_sign_in(session, username)  # off per site, but for break-glass admins
            user, token = service.login(session, username, password, source, state.secret_key,
                                        s.login_max_failures, s.login_lock_minutes, s.session_hours)
        except DomainError:
            session.commit()  # keep the failed-login count and any lock although the sign-in fails
            raise
        expires_at = session.scalar(select(LoginSession.expires_at)
                                    .where(LoginSession.token_hash == token_digest(state.secret_key, token)))
        signed_in = SignedIn(user.username, user.need_password_change, token, expires_at)
        session.commit()
    return signed_in


async def password_sign_in(state: AppState, username: str, password: str, source: str | None) -> SignedIn:
    """Sign in or raise: 401 (wrong, unknown or locked: one answer), 429 (throttled source, or no turn in time)."""
    limiter = throttle.login_limiter(state)
    key = throttle.source_key(source)
    wait = limiter.take(key)
    if wait:
        raise TooManyRequests(f"too many failed sign-ins from {key}; try again in {throttle.retry_after(wait)} s",
                              "login_rate_limited", throttle.retry_after(wait))
    try:
        async with throttle.password_gate(state).turn():
            signed_in = await run_in_threadpool(_sign_in, state, username, password, source)
    except TooManyRequests:
        limiter.give_back(key)  # not an attempt: nothing was checked
        raise
    limiter.give_back(key)
    return signed_in
