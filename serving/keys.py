"""API keys: issued once in clear, stored as a SHA-256 hash, looked up per request."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving import audit
from serving.audit import Caller
from serving.db import ApiKey, Database, utcnow
from serving.errors import NotFound

ROLES: tuple[str, ...] = ("admin", "reviewer", "agent", "client")
PREFIX = "gk_"


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens, so a plain SHA-256 cannot be brute-forced; a slow
    # password hash would only add latency to every request.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def issue_key(session: Session, role: str, name: str, actor: Caller = audit.SYSTEM) -> tuple[ApiKey, str]:
    """Add a new key to the session; returns the row and the clear key (shown once)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not name.strip():
        raise ValueError("a key needs a non-empty name (for agent keys: the transcripts' agent_id)")
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(key_hash=hash_key(key), prefix=key[:10], role=role, name=name.strip())
    session.add(row)
    session.flush()
    audit.record(session, actor, "key.create", "api_key", row.id, after={"role": role, "name": row.name})
    return row, key


def create_key_row(session: Session, role: str, name: str, actor: Caller) -> tuple[ApiKey, str]:
    """Issue a key for POST /v1/keys and commit it."""
    row, key = issue_key(session, role, name, actor)
    session.commit()
    return row, key


def create_key(db_url: str, role: str, name: str) -> str:
    """Create a key in the database at db_url (schema upgraded first); returns the clear key."""
    from serving.migrate import upgrade

    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    database = Database(db_url)
    try:
        upgrade(database)
        with database.session() as session:
            _, key = issue_key(session, role, name)
            session.commit()
    finally:
        database.dispose()
    return key


def lookup(session: Session, key: str) -> Caller | None:
    """The caller a clear key stands for, or None when unknown or revoked."""
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        return None
    return Caller(key_id=row.id, role=row.role, name=row.name)


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, oldest first (hashes are never shown)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def revoke_key(session: Session, key_id: int, actor: Caller) -> ApiKey:
    """Revoke a key (idempotent); it answers 401 from then on."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no key {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor, "key.revoke", "api_key", row.id, before={"revoked": False},
                     after={"revoked": True})
        session.commit()
    return row
