"""Conversations: list, fetch with grades side by side, review, dispute."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from serving import reviews
from serving.audit import Caller
from serving.auth import allow, authenticate, get_runner, get_session
from serving.bodies import RawBody, parse_json, read_body, validate
from serving.db import Conversation
from serving.routes.common import Limit, Offset, body_doc, errors
from serving.runner import GradingRunner
from serving.schemas import ConversationList, ConversationOut, DisputeOut, ReviewCreated

router = APIRouter(tags=["conversations"])
EVERYONE = ("admin", "reviewer", "agent", "client")


def _conversation(conversation_id: str, caller: Caller = Depends(authenticate),
                  session: Session = Depends(get_session)) -> Conversation:
    return reviews.visible_conversation(session, caller, conversation_id)


@router.get("/v1/conversations", summary="Conversations this key may see, newest first",
            response_model=ConversationList, responses=errors())
def list_conversations(agent_id: str | None = Query(None), limit: Limit = 100, offset: Offset = 0,
                       caller: Caller = Depends(allow(*EVERYONE)), session: Session = Depends(get_session)) -> dict:
    return reviews.list_conversations(session, caller, agent_id, limit, offset)


@router.get("/v1/conversations/{conversation_id}", summary="A conversation: transcript, machine and effective "
            "grades, reviews, disputes, audit trail", response_model=ConversationOut, responses=errors(404))
def get_conversation(caller: Caller = Depends(allow(*EVERYONE)), conv: Conversation = Depends(_conversation),
                     session: Session = Depends(get_session), runner: GradingRunner = Depends(get_runner)) -> dict:
    return reviews.conversation_view(session, conv, runner.rubric)


@router.post("/v1/conversations/{conversation_id}/reviews", status_code=201, summary="Review a conversation: "
             "override items, turn labels, red line or score, with a reason", response_model=ReviewCreated,
             responses=errors(404, 422), openapi_extra=body_doc(reviews.ReviewBody))
def post_review(caller: Caller = Depends(allow("admin", "reviewer")), body: RawBody = Depends(read_body),
                conv: Conversation = Depends(_conversation), session: Session = Depends(get_session),
                runner: GradingRunner = Depends(get_runner)) -> dict:
    review = validate(reviews.ReviewBody, parse_json(body))
    return reviews.add_review(session, conv, caller, review, runner.rubric)


@router.post("/v1/conversations/{conversation_id}/disputes", status_code=201, summary="Contest one item of a "
             "conversation (agents: their own)", response_model=DisputeOut, responses=errors(404, 409, 422),
             openapi_extra=body_doc(reviews.DisputeBody))
def post_dispute(caller: Caller = Depends(allow("admin", "reviewer", "agent")), body: RawBody = Depends(read_body),
                 conv: Conversation = Depends(_conversation),
                 session: Session = Depends(get_session), runner: GradingRunner = Depends(get_runner)) -> dict:
    dispute = validate(reviews.DisputeBody, parse_json(body))
    return reviews.open_dispute(session, conv, caller, dispute, runner.rubric)
