"""Reviewed conversations as labeled training data: the written-data format of contracts.md
(agent turns carry the effective `labels`, the conversation `split` = "train")."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import select

from grader.features.pii import mask_personal_numbers
from serving.db import Conversation, Database, EffectiveGrade
from serving.search import Filters, conversations

PAGE = 200


def training_record(transcript: dict, effective: dict) -> dict:
    """The transcript with effective labels on agent turns (none elsewhere), masked, split train."""
    labels = {t["index"]: list(t["behaviors"]) for t in effective.get("turns", [])}
    turns = []
    for index, turn in enumerate(transcript.get("turns", [])):
        turn = {k: v for k, v in turn.items() if k != "labels"}
        turn["text"] = mask_personal_numbers(turn.get("text") or "")
        if turn.get("speaker") == "agent":
            turn["labels"] = labels.get(index, [])
        turns.append(turn)
    return {**transcript, "turns": turns, "split": "train"}


def export_lines(database: Database, f: Filters, relabeled_only: bool = False) -> Iterator[bytes]:
    """JSON Lines of every reviewed conversation passing `f`, by id, read in pages (a session
    of its own, since the response streams after the request's session is gone)."""
    last = ""
    while True:
        with database.session() as session:
            stmt = (select(Conversation.id, Conversation.transcript, EffectiveGrade.grade_json)
                    .join(EffectiveGrade, EffectiveGrade.conversation_id == Conversation.id)
                    .where(EffectiveGrade.reviewed.is_(True), Conversation.id > last,
                           Conversation.id.in_(conversations(f)))
                    .order_by(Conversation.id).limit(PAGE))
            if relabeled_only:
                stmt = stmt.where(EffectiveGrade.relabeled.is_(True))
            rows = session.execute(stmt).all()
        if not rows:
            return
        for conv_id, transcript, grade in rows:
            record = training_record(json.loads(transcript), json.loads(grade))
            yield (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        last = rows[-1][0]
