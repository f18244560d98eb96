"""Priority classes (inference > training > interactive by default), seeded at bootstrap."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from allotment.errors import Conflict, NotFound, invalid
from allotment.quotas.models import PriorityClass
from allotment.workloads.models import ACTIVE_STATES, Job

# Seeded once; admins may change them afterwards. "training" is used when a job names no class.
DEFAULT_CLASSES = (
    ("inference", 300, "serving: may preempt training and interactive work where the quota allows", False),
    ("training", 200, "batch training", True),
    ("interactive", 100, "notebooks and development sessions", False),
)


def ensure_defaults(session: Session) -> None:
    """Idempotent: the built-in priority classes."""
    if session.scalar(select(func.count()).select_from(PriorityClass)) == 0:
        for name, value, description, is_default in DEFAULT_CLASSES:
            session.add(PriorityClass(name=name, value=value, description=description, is_default=is_default))
    session.flush()


def list_classes(session: Session) -> list[PriorityClass]:
    return list(session.scalars(select(PriorityClass).order_by(PriorityClass.value.desc())).all())


def find_class(session: Session, name: str) -> PriorityClass:
    found = session.get(PriorityClass, name)
    if found is None:
        known = ", ".join(c.name for c in list_classes(session))
        raise NotFound(f"no priority class '{name}' (known: {known})")
    return found


def default_class(session: Session) -> PriorityClass | None:
    found = session.scalar(select(PriorityClass).where(PriorityClass.is_default.is_(True)))
    return found or session.scalar(select(PriorityClass).order_by(PriorityClass.value).limit(1))


def _set_default(session: Session, name: str) -> None:
    session.execute(update(PriorityClass).where(PriorityClass.name != name).values(is_default=False))


def create_class(session: Session, name: str, value: int, description: str | None, is_default: bool) -> PriorityClass:
    name = name.strip()
    if not name or len(name) > 32:
        raise invalid("name", "must be 1 to 32 characters long")
    if session.get(PriorityClass, name) is not None:
        raise Conflict(f"priority class {name} already exists")
    if is_default:
        _set_default(session, name)
    created = PriorityClass(name=name, value=value, description=description, is_default=is_default)
    session.add(created)
    session.flush()
    return created


def update_class(session: Session, found: PriorityClass, value: int | None, description: str | None,
                 is_default: bool | None) -> PriorityClass:
    """A new value applies to jobs submitted afterwards; queued jobs keep the value they were submitted with."""
    if value is not None:
        found.value = value
    if description is not None:
        found.description = description
    if is_default:
        _set_default(session, found.name)
        found.is_default = True
    elif is_default is False:
        found.is_default = False
    session.flush()
    return found


def delete_class(session: Session, found: PriorityClass) -> None:
    active = session.scalar(select(func.count()).select_from(Job)
                            .where(Job.priority_class == found.name, Job.state.in_(ACTIVE_STATES)))
    if active:
        raise Conflict(f"priority class {found.name} is used by {active} queued or running jobs")
    session.delete(found)
    session.flush()
