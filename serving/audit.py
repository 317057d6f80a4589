"""The append-only audit log: who did what to which object, when, before, after and why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db import AuditRecord


@dataclass(frozen=True)
class Caller:
    """The authenticated API key a request acts as."""

    key_id: int | None
    role: str
    name: str


SYSTEM = Caller(key_id=None, role="system", name="system")


def _text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True)


def record(session: Session, actor: Caller, action: str, object_type: str, object_id: Any, *,
           conversation_id: str | None = None, before: Any = None, after: Any = None, why: str | None = None) -> AuditRecord:
    """Add one audit record to the session's transaction (written with the change it records)."""
    row = AuditRecord(actor=actor.name, actor_key_id=actor.key_id, actor_role=actor.role, action=action,
                      object_type=object_type, object_id=str(object_id), conversation_id=conversation_id,
                      before=_text(before), after=_text(after), why=why)
    session.add(row)
    return row


def for_conversation(session: Session, conversation_id: str) -> list[AuditRecord]:
    """The conversation's audit trail, oldest first."""
    stmt = select(AuditRecord).where(AuditRecord.conversation_id == conversation_id).order_by(AuditRecord.id)
    return list(session.scalars(stmt))
