"""Domain errors. Services raise these; the API maps them onto RFC 9457 problem+json responses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass
class DomainError(Exception):
    """Base of every error a client may see. `detail` is one sentence naming the problem."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    status: int = 400
    title: str = "Bad request"
    code: str = "bad_request"

    def __str__(self) -> str:
        return self.detail


class ValidationFailed(DomainError):
    def __init__(self, detail: str, errors: list[FieldError] | None = None):
        super().__init__(detail, errors or [], 422, "Validation failed", "validation_failed")


class NotFound(DomainError):
    def __init__(self, detail: str):
        super().__init__(detail, [], 404, "Not found", "not_found")


class Conflict(DomainError):
    def __init__(self, detail: str, errors: list[FieldError] | None = None):
        super().__init__(detail, errors or [], 409, "Conflict", "conflict")


class Unauthenticated(DomainError):
    def __init__(self, detail: str = "authentication required"):
        super().__init__(detail, [], 401, "Unauthorized", "unauthenticated")


class Forbidden(DomainError):
    def __init__(self, detail: str = "you are not allowed to do this"):
        super().__init__(detail, [], 403, "Forbidden", "forbidden")


def invalid(field_name: str, message: str) -> ValidationFailed:
    """Shorthand for a one-field validation failure."""
    return ValidationFailed(f"{field_name}: {message}", [FieldError(field_name, message)])


class TooManyRequests(DomainError):
    """429: the caller must wait `retry_after_s` seconds (sent as Retry-After) before trying again."""

    def __init__(self, detail: str, code: str, retry_after_s: int):
        super().__init__(detail, [], 429, "Too many requests", code)
        self.headers = {"Retry-After": str(max(1, int(retry_after_s)))}
