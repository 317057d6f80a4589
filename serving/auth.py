"""Request dependencies: the database, the session, the grading runner, and who is calling.

Checks happen in the order of the contract: no or unknown key (401), then role (403), then
visibility of the object (404, in the route's loader), then the body (422). FastAPI solves a
route's dependencies in parameter order, so routes list `allow(...)` first; the body's bytes
are read before the loader (so no SQLite write lock is held while a client uploads) and
parsed in the handler, after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from serving import keys
from serving.audit import Caller
from serving.db import Database
from serving.errors import Forbidden, Unauthenticated
from serving.runner import GradingRunner
from serving.settings import Settings


def get_database(request: Request) -> Database:
    """The app's database (tests swap it through dependency overrides)."""
    return request.app.state.database


def get_session(database: Database = Depends(get_database)) -> Iterator[Session]:
    """A session for one request, closed (rolled back if not committed) afterwards."""
    with database.session() as session:
        yield session


def get_runner(request: Request) -> GradingRunner:
    return request.app.state.runner


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


bearer = HTTPBearer(auto_error=False, description="an API key from `grader keys create`")


def authenticate(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                 database: Database = Depends(get_database)) -> Caller:
    """The caller of `Authorization: Bearer KEY`; 401 without a key or with an unknown one."""
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise Unauthenticated("send `Authorization: Bearer KEY`")
    # A short session of its own: the check must not hold a transaction open while grading.
    with database.session() as session:
        caller = keys.lookup(session, token)
    if caller is None:
        raise Unauthenticated("unknown or revoked API key")
    return caller


def allow(*roles: str) -> Callable[..., Caller]:
    """A dependency admitting only keys of these roles (403 for the others)."""

    def check(caller: Caller = Depends(authenticate)) -> Caller:
        if caller.role not in roles:
            raise Forbidden(f"a {caller.role} key may not do this (allowed: {', '.join(roles)})")
        return caller

    check.__name__ = f"allow_{'_'.join(roles)}"
    return check
