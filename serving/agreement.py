"""Machine vs human agreement: per item and per behavior over reviewed conversations
(agreement rate, Cohen's kappa, 2x2 confusion), and per-agent score averages."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from grader.codebook import BEHAVIORS
from serving.db import Conversation, EffectiveGrade, MachineGrade
from serving.search import Filters, conversations

# (machine says yes, human says yes) -> name; yes = item passed / behavior present
CELLS = {(True, True): "machine_yes_human_yes", (True, False): "machine_yes_human_no",
         (False, True): "machine_no_human_yes", (False, False): "machine_no_human_no"}


def cohen_kappa(confusion: dict[str, int]) -> float | None:
    """Cohen's kappa of a 2x2 confusion (keys of CELLS); None when undefined (both raters
    always gave the same single answer, so chance agreement is 1)."""
    a, b = confusion["machine_yes_human_yes"], confusion["machine_yes_human_no"]
    c, d = confusion["machine_no_human_yes"], confusion["machine_no_human_no"]
    n = a + b + c + d
    if n == 0:
        return None
    observed = (a + d) / n
    expected = ((a + b) * (a + c) + (c + d) * (b + d)) / (n * n)
    if expected >= 1.0:
        return None
    return round((observed - expected) / (1 - expected), 4)


def summarise(pairs: Counter) -> dict:
    """n, agreement rate, kappa and confusion of (machine, human) boolean pairs."""
    confusion = {name: pairs.get(cell, 0) for cell, name in CELLS.items()}
    n = sum(confusion.values())
    agree = confusion["machine_yes_human_yes"] + confusion["machine_no_human_no"]
    return {"n": n, "agreement": round(agree / n, 4) if n else None, "kappa": cohen_kappa(confusion),
            "confusion": confusion}


def _pairs(machine: dict, effective: dict, items: dict, behaviors: dict) -> None:
    human = {i["id"]: i for i in effective.get("items", [])}
    for item in machine.get("items", []):
        other = human.get(item["id"])
        if other is not None and (item.get("applicable", True) or other.get("applicable", True)):
            items[item["id"]][(bool(item["passed"]), bool(other["passed"]))] += 1
    labels = {t["index"]: set(t["behaviors"]) for t in effective.get("turns", [])}
    for turn in machine.get("turns", []):
        said = set(turn["behaviors"])
        for b in BEHAVIORS:
            behaviors[b][(b in said, b in labels.get(turn["index"], said))] += 1


def _agents(session: Session, f: Filters) -> list[dict]:
    stmt = (select(Conversation.agent_id, func.count(), func.avg(EffectiveGrade.score), func.avg(EffectiveGrade.machine_score),
                   func.sum(case((EffectiveGrade.reviewed, 1), else_=0)))
            .join(EffectiveGrade, EffectiveGrade.conversation_id == Conversation.id)
            .where(Conversation.id.in_(conversations(f))).group_by(Conversation.agent_id).order_by(Conversation.agent_id))
    return [{"agent_id": agent, "n": n, "mean_score": round(float(mean), 2), "mean_machine_score": round(float(machine), 2),
             "reviewed": int(reviewed or 0)} for agent, n, mean, machine, reviewed in session.execute(stmt)]


def agreement_stats(session: Session, f: Filters) -> dict:
    """Statistics over the conversations passing `f`; item and behavior agreement counts only
    reviewed conversations (at least one review or accepted dispute)."""
    stmt = (select(MachineGrade.grade_json, EffectiveGrade.grade_json)
            .join(EffectiveGrade, EffectiveGrade.machine_grade_id == MachineGrade.id)
            .where(EffectiveGrade.reviewed.is_(True), EffectiveGrade.conversation_id.in_(conversations(f))))
    items: dict[str, Counter] = defaultdict(Counter)
    behaviors: dict[str, Counter] = defaultdict(Counter)
    reviewed = 0
    for machine, effective in session.execute(stmt):
        reviewed += 1
        _pairs(json.loads(machine), json.loads(effective), items, behaviors)
    return {
        "reviewed_conversations": reviewed,
        "items": [{"id": k, **summarise(v)} for k, v in sorted(items.items())],
        "behaviors": [{"id": b, **summarise(behaviors[b])} for b in BEHAVIORS if b in behaviors],
        "agents": _agents(session, f),
    }
