"""What the workbench reads beyond the /v1 contract: the review queue, the dashboard overview
and the caller's own description. Reads only; every number comes from the effective-grade
cache (`effective_*` tables) that reviews keep up to date."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict, defaultdict
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader.codebook import BEHAVIOR_NAMES_ZH, BEHAVIORS
from grader.rubric.schema import Rubric
from grader.types import Grade
from serving.audit import Caller
from serving.db import Conversation, Dispute, EffectiveFailure, EffectiveGrade, MachineGrade
from serving.search import Filters, conversations
from serving.web.triage import Triage, Watch, triage

QueueStatus = Literal["todo", "done"]
HISTOGRAM_BINS = 10


def _open_disputes(session: Session) -> dict[str, int]:
    rows = session.execute(select(Dispute.conversation_id, func.count()).where(Dispute.status == "open")
                           .group_by(Dispute.conversation_id))
    return {cid: n for cid, n in rows}


class TriageMemo:
    """Triage results of the queue, kept per process by (conversation, effective-grade version,
    open disputes) so that a grade is parsed and triaged again only after it changed.

    The version is read from the database on every request, so several processes sharing one
    database never serve a stale priority; a different watch list (new rubric or thresholds)
    empties the memo."""

    def __init__(self, max_entries: int = 200_000):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, Triage] = OrderedDict()
        self._watch: Watch | None = None
        self._lock = threading.Lock()

    def lookup(self, watch: Watch, keys: list[tuple]) -> dict[tuple, Triage]:
        with self._lock:
            if watch != self._watch:
                self._entries.clear()
                self._watch = watch
            return {k: self._entries[k] for k in keys if k in self._entries}

    def store(self, watch: Watch, found: dict[tuple, Triage]) -> None:
        with self._lock:
            if watch != self._watch:
                return
            self._entries.update(found)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


def _triaged(session: Session, watch: Watch, memo: TriageMemo, rows: list, disputes: dict[str, int]) -> dict[str, Triage]:
    """Triage of each row (id, version...) by conversation id; grades are read only for misses."""
    keys = {r.id: (r.id, r.machine_grade_id, r.updated_at, r.reviewed, disputes.get(r.id, 0)) for r in rows}
    known = memo.lookup(watch, list(keys.values()))
    missing = [cid for cid, key in keys.items() if key not in known]
    fresh: dict[tuple, Triage] = {}
    for start in range(0, len(missing), 500):
        chunk = missing[start:start + 500]
        for cid, grade_json in session.execute(select(EffectiveGrade.conversation_id, EffectiveGrade.grade_json)
                                               .where(EffectiveGrade.conversation_id.in_(chunk))):
            key = keys[cid]
            fresh[key] = triage(Grade.model_validate_json(grade_json), watch, open_disputes=key[4], reviewed=key[3])
    memo.store(watch, fresh)
    return {cid: known.get(key) or fresh[key] for cid, key in keys.items() if key in known or key in fresh}


def _queue_row(row, result: Triage, disputes: int) -> dict:
    return {"id": row.id, "agent_id": row.agent_id, "team": row.team, "started_at": row.started_at,
            "machine_score": row.machine_score, "score": row.score, "grade": row.grade, "red_line": row.red_line,
            "reviewed": row.reviewed, "open_disputes": disputes, "priority": result.priority,
            "reasons": [{"code": r.code, "label": r.label, "detail": r.detail, "weight": r.weight}
                        for r in result.reasons]}


def facets(session: Session, rubric: Rubric) -> dict:
    """The values the queue's filters can take: agents and teams seen, the rubric's bands."""
    agents = session.scalars(select(Conversation.agent_id).where(Conversation.agent_id.is_not(None)).distinct())
    teams = session.scalars(select(Conversation.team).where(Conversation.team.is_not(None)).distinct())
    return {"agents": sorted(agents), "teams": sorted(teams), "grades": [b.label for b in rubric.grade_bands]}


def review_queue(session: Session, watch: Watch, memo: TriageMemo, rubric: Rubric, f: Filters, grade: str | None,
                 status: QueueStatus | None, limit: int, offset: int) -> dict:
    """Conversations passing the filters, highest priority first (then newest, then id).

    Priorities come from `triage`, a pure function of each effective grade, its open disputes
    and the tagger's thresholds; `memo` spares recomputing those of unchanged grades."""
    stmt = (select(Conversation.id, Conversation.agent_id, Conversation.team, Conversation.started_at,
                   EffectiveGrade.machine_grade_id, EffectiveGrade.updated_at, EffectiveGrade.machine_score,
                   EffectiveGrade.score, EffectiveGrade.grade, EffectiveGrade.red_line, EffectiveGrade.reviewed)
            .join(EffectiveGrade, EffectiveGrade.conversation_id == Conversation.id)
            .where(Conversation.id.in_(conversations(f))))
    if grade is not None:
        stmt = stmt.where(EffectiveGrade.grade == grade)
    disputes = _open_disputes(session)
    rows = [r for r in session.execute(stmt).all()
            if status is None or (status == "todo") == (not r.reviewed or disputes.get(r.id, 0) > 0)]
    results = _triaged(session, watch, memo, rows, disputes)
    items = [_queue_row(r, results[r.id], disputes.get(r.id, 0)) for r in rows if r.id in results]
    items.sort(key=lambda r: r["id"])
    items.sort(key=lambda r: r["started_at"] or "", reverse=True)
    items.sort(key=lambda r: r["priority"], reverse=True)
    page = items[offset: offset + limit]
    end = offset + len(page)
    return {"items": page, "total": len(items), "next_offset": end if end < len(items) else None,
            "facets": facets(session, rubric)}


def _histogram(scores: list[float]) -> list[dict]:
    width = 100 / HISTOGRAM_BINS
    counts = Counter(min(HISTOGRAM_BINS - 1, int(s // width)) for s in scores)
    return [{"low": round(i * width, 1), "high": round((i + 1) * width, 1), "count": counts.get(i, 0)}
            for i in range(HISTOGRAM_BINS)]


def _failures(session: Session, f: Filters, kind: str) -> dict[str, int]:
    stmt = (select(EffectiveFailure.ref_id, func.count(func.distinct(EffectiveFailure.conversation_id)))
            .where(EffectiveFailure.kind == kind, EffectiveFailure.conversation_id.in_(conversations(f)))
            .group_by(EffectiveFailure.ref_id))
    return {ref: n for ref, n in session.execute(stmt)}


def _failed_items(session: Session, f: Filters, rubric: Rubric, total: int) -> list[dict]:
    # A bonus not earned loses nothing (bonus points are not part of the maximum): not a failure.
    counts = _failures(session, f, "item")
    out = [{"id": it.id, "label": it.label, "dimension": dim.label, "kind": it.kind, "count": counts[it.id],
            "rate": round(counts[it.id] / total, 4) if total else 0.0}
           for dim in rubric.dimensions for it in dim.items if counts.get(it.id) and it.kind != "bonus"]
    return sorted(out, key=lambda r: (-r["count"], r["id"]))


def _red_lines(session: Session, f: Filters, rubric: Rubric) -> list[dict]:
    counts = _failures(session, f, "red_line")
    labels = {rl.id: rl.label for rl in rubric.red_lines}
    return sorted(({"id": ref, "label": labels.get(ref, "人工判定红线"), "count": n} for ref, n in counts.items()),
                  key=lambda r: (-r["count"], r["id"]))


def _agents(rows: list) -> list[dict]:
    by_agent: dict[str | None, list] = defaultdict(list)
    for row in rows:
        by_agent[row.agent_id].append(row)
    return [{"agent_id": agent, "team": group[0].team, "n": len(group),
             "mean_score": round(sum(r.score for r in group) / len(group), 2),
             "mean_machine_score": round(sum(r.machine_score for r in group) / len(group), 2),
             "red_lines": sum(1 for r in group if r.red_line), "reviewed": sum(1 for r in group if r.reviewed)}
            for agent, group in sorted(by_agent.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]


def overview(session: Session, f: Filters, rubric: Rubric) -> dict:
    """The dashboard's numbers over the conversations passing `f`: totals, score histograms
    (effective and machine), grade counts, most-failed items, red lines, per-agent averages."""
    rows = session.execute(
        select(Conversation.agent_id, Conversation.team, EffectiveGrade.score, EffectiveGrade.machine_score,
               EffectiveGrade.grade, EffectiveGrade.red_line, EffectiveGrade.reviewed,
               MachineGrade.grade.label("machine_grade"))
        .join(EffectiveGrade, EffectiveGrade.conversation_id == Conversation.id)
        .join(MachineGrade, MachineGrade.id == EffectiveGrade.machine_grade_id)
        .where(Conversation.id.in_(conversations(f)))).all()
    total = len(rows)
    effective, machine = Counter(r.grade for r in rows), Counter(r.machine_grade for r in rows)
    return {
        "total": total, "reviewed": sum(1 for r in rows if r.reviewed), "red_line": sum(1 for r in rows if r.red_line),
        "mean_score": round(sum(r.score for r in rows) / total, 2) if total else None,
        "mean_machine_score": round(sum(r.machine_score for r in rows) / total, 2) if total else None,
        "histogram": {"effective": _histogram([r.score for r in rows]),
                      "machine": _histogram([r.machine_score for r in rows])},
        "grades": [{"grade": b.label, "count": effective.get(b.label, 0), "machine": machine.get(b.label, 0)}
                   for b in rubric.grade_bands],
        "failed_items": _failed_items(session, f, rubric, total),
        "red_lines": _red_lines(session, f, rubric),
        "agents": _agents(rows),
    }


def me(caller: Caller, rubric: Rubric, thresholds: dict[str, float]) -> dict:
    """Who the key is, and (except for clients, who have no page) the labels the page shows:
    behaviors with their Chinese names and thresholds, dimensions and items, red lines, bands."""
    out: dict = {"role": caller.role, "name": caller.name}
    if caller.role == "client":
        return out
    out["behaviors"] = [{"id": b, "label": BEHAVIOR_NAMES_ZH[b], "threshold": thresholds.get(b, 0.5)} for b in BEHAVIORS]
    out["dimensions"] = [{"id": d.id, "label": d.label, "weight": d.weight,
                          "items": [{"id": i.id, "label": i.label, "kind": i.kind, "points": i.points} for i in d.items]}
                         for d in rubric.dimensions]
    out["red_lines"] = [{"id": r.id, "label": r.label} for r in rubric.red_lines]
    out["grade_bands"] = [{"label": b.label, "min": b.min} for b in rubric.grade_bands]
    out["rubric"] = {"id": rubric.id, "version": rubric.version, "name": rubric.name}
    return out
