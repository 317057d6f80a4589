"""The review workbench without a browser: the queue's priority (a pure function), the page and
its static files, and the JSON endpoints it reads (`/v1/queue`, `/v1/stats/overview`, `/v1/me`)
on both database backends."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from conftest_api import api, examples  # noqa: F401 - fixtures and helpers
from grader.codebook import BEHAVIORS
from grader.rubric.schema import default_rubric_path, load_rubric
from grader.types import Grade, ItemResult, RedLineResult, TurnBehaviors
from serving.search import Filters
from serving.web.queries import TriageMemo, review_queue
from serving.web.routes import STATIC, TEMPLATES
from serving.web.triage import Watch, Weights, doubts, fragile, near_band, triage, watch_for

RUBRIC = load_rubric(default_rubric_path())
WATCH = watch_for(RUBRIC, {b: 0.5 for b in BEHAVIORS})
FULL_NUMBERS = ("13958762431", "6217001234567893")  # read out in ex-ecommerce-05 and ex-bank-02


# ---------------------------------------------------------------- triage: a pure function

def turn(index: int, **probs: float) -> TurnBehaviors:
    scores = {b: probs.get(b, 0.03) for b in BEHAVIORS}
    return TurnBehaviors(index=index, speaker="agent", behaviors=[b for b, p in scores.items() if p >= 0.5], scores=scores)


def item(item_id: str, passed: bool = True, applicable: bool = True) -> ItemResult:
    found = next((it, d.id) for d in RUBRIC.dimensions for it in d.items if it.id == item_id)
    rubric_item, dimension = found
    return ItemResult(id=item_id, label=rubric_item.label, dimension=dimension, kind=rubric_item.kind,
                      points=rubric_item.points if passed else 0.0, max_points=rubric_item.points, passed=passed,
                      applicable=applicable, source="model", reason="test")


def grade(score: float = 100.0, turns=(), items=(), red_lines=()) -> Grade:
    band = "待改进" if red_lines else RUBRIC.band(score)
    return Grade(id="g", score=0.0 if red_lines else score, grade=band, red_line=bool(red_lines),
                 red_lines=list(red_lines), turns=list(turns), items=list(items))


CLEAN = grade(95.0, turns=[turn(1, greeting=0.97), turn(3, solution=0.96), turn(5, closing=0.98)],
              items=[item("greeting"), item("solution_given"), item("polite_closing")])


def codes(result) -> list[str]:
    return [r.code for r in result.reasons]


def test_a_confident_clean_grade_needs_no_review():
    result = triage(CLEAN, WATCH)
    assert result.priority == 0 and result.reasons == ()


def test_watch_list_reads_behavior_conditions_scopes_and_bands_from_the_rubric():
    assert [c.behavior for c in WATCH.items["polite_closing"]] == ["closing"]
    assert WATCH.items["polite_closing"][0].last == 2 and WATCH.items["greeting"][0].first == 2
    assert {c.behavior for c in WATCH.items["effective_questions"]} == {"probing", "info_request", "need_confirmation"}
    assert "first_response_time" not in WATCH.items  # rule-only items have no probability to doubt
    assert set(WATCH.red_lines) == {"impolite", "shirking"} and WATCH.red_lines["impolite"][0].startswith("辱骂")
    assert WATCH.bands == (("优秀", 90.0), ("良好", 80.0), ("合格", 60.0), ("待改进", 0.0))


def test_red_lines_come_first_then_disputes_then_machine_doubts():
    red = grade(turns=[turn(1, impolite=0.97)], items=[item("courteous_language", passed=False)],
                red_lines=[RedLineResult(id="impolite", label="辱骂、讥讽或与客户争吵（不文明）", reason="第1轮")])
    disputed = triage(CLEAN, WATCH, open_disputes=1)
    doubtful = grade(88.5, turns=[turn(1, greeting=0.97), turn(3, solution=0.55), turn(5, closing=0.98)],
                     items=[item("greeting"), item("solution_given"), item("polite_closing")])
    ranked = sorted([("doubtful", triage(doubtful, WATCH)), ("red", triage(red, WATCH)), ("disputed", disputed),
                     ("clean", triage(CLEAN, WATCH))], key=lambda kv: -kv[1].priority)
    assert [name for name, _ in ranked] == ["red", "disputed", "doubtful", "clean"]
    assert codes(triage(red, WATCH)) == ["red_line"]
    assert triage(red, WATCH).reasons[0].label == "红线：辱骂、讥讽或与客户争吵"  # parenthetical left to the detail
    assert codes(disputed) == ["dispute"] and disputed.reasons[0].label == "待处理申诉"
    two = triage(CLEAN, WATCH, open_disputes=2)
    assert two.reasons[0].label == "待处理申诉 ×2" and two.priority > disputed.priority


def test_an_item_hanging_on_a_probability_near_its_threshold_is_fragile():
    near_closing = grade(turns=[turn(1, greeting=0.97), turn(3, solution=0.96), turn(5, closing=0.58)],
                         items=[item("greeting"), item("solution_given"), item("polite_closing")])
    flips = fragile(near_closing, WATCH, 0.15)
    assert list(flips) == [("item", "polite_closing")]
    label, doubt = flips[("item", "polite_closing")]
    assert label == "礼貌道别" and (doubt.turn, doubt.behavior, doubt.prob, doubt.threshold) == (5, "closing", 0.58, 0.5)
    result = triage(near_closing, WATCH)
    assert codes(result) == ["fragile"] and result.reasons[0].label == "评分项临界：礼貌道别"
    assert "第5轮「礼貌结束」0.58（阈值 0.50）" in result.reasons[0].detail
    assert result.priority == Weights().fragile_item


def test_a_doubt_outside_the_items_scope_is_only_low_confidence():
    # closing at 0.45 on the first agent turn: polite_closing reads the last two agent turns only
    early = grade(turns=[turn(1, greeting=0.97, closing=0.45), turn(3, solution=0.96), turn(5, closing=0.98)],
                  items=[item("greeting"), item("solution_given"), item("polite_closing")])
    assert fragile(early, WATCH, 0.15) == {}
    result = triage(early, WATCH)
    assert codes(result) == ["uncertain"] and result.reasons[0].label == "低置信度：1 处行为概率接近阈值"
    assert [(d.turn, d.behavior) for d in doubts(early, WATCH, 0.15)] == [(1, "closing")]


def test_a_red_line_behavior_just_below_its_threshold_is_a_fragile_red_line():
    # the shipped rubric raises the impolite red line from the model at min_prob 0.8
    almost = grade(turns=[turn(1, greeting=0.97, impolite=0.71), turn(3, solution=0.96)],
                   items=[item("greeting"), item("solution_given")])
    result = triage(almost, WATCH)
    assert codes(result) == ["fragile"] and result.reasons[0].label == "红线临界：辱骂、讥讽或与客户争吵"
    assert result.priority == Weights().fragile_red_line


def test_not_applicable_items_and_min_prob_conditions():
    na = grade(turns=[turn(1, greeting=0.97), turn(3, solution=0.55)], items=[item("solution_given", applicable=False)])
    assert ("item", "solution_given") not in fragile(na, WATCH, 0.15)
    strict = Watch(thresholds=WATCH.thresholds, items={"solution_given": (
        type(WATCH.items["solution_given"][0])("solution", min_prob=0.9),)}, bands=WATCH.bands)
    sure = grade(turns=[turn(3, solution=0.86)], items=[item("solution_given")])
    assert fragile(sure, strict, 0.15)[("item", "solution_given")][1].threshold == 0.9
    assert fragile(sure, WATCH, 0.15) == {}


@pytest.mark.parametrize("score,expected", [
    (88.0, ("优秀", 90.0, -2.0)), (90.0, ("优秀", 90.0, 0.0)), (81.4, ("良好", 80.0, 1.4)),
    (61.0, ("合格", 60.0, 1.0)), (75.0, None), (1.0, None), (100.0, None),
])
def test_near_band_finds_the_closest_boundary_and_ignores_zero(score, expected):
    assert near_band(score, WATCH.bands, 3.0) == expected


def test_near_band_reason_weighs_closer_scores_more():
    on_the_line = triage(grade(89.9, items=[item("greeting")]), WATCH)
    further = triage(grade(87.5, items=[item("greeting")]), WATCH)
    assert codes(on_the_line) == codes(further) == ["near_band"]
    assert on_the_line.reasons[0].label == "临近等级线：距「优秀」线差 0.1 分"
    assert on_the_line.priority > further.priority > 0
    red = grade(0.0, red_lines=[RedLineResult(id="pii_leak", label="泄露", reason="x")])
    assert "near_band" not in codes(triage(red, WATCH))


def test_a_review_discounts_the_machines_doubts_but_not_open_disputes():
    red = grade(red_lines=[RedLineResult(id="pii_leak", label="泄露客户个人信息", reason="x")])
    fresh, reviewed = triage(red, WATCH), triage(red, WATCH, reviewed=True)
    assert reviewed.priority == fresh.priority * Weights().reviewed_factor
    disputed = triage(red, WATCH, open_disputes=1, reviewed=True)
    assert disputed.priority == Weights().dispute + reviewed.priority


def test_triage_is_pure():
    doubtful = grade(88.5, turns=[turn(1, greeting=0.6), turn(3, solution=0.55)],
                     items=[item("greeting"), item("solution_given")])
    before = doubtful.model_dump()
    assert triage(doubtful, WATCH, open_disputes=1) == triage(doubtful, WATCH, open_disputes=1)
    assert doubtful.model_dump() == before


# ---------------------------------------------------------------- the page and its files

def test_the_page_is_public_chinese_and_locked_down(api):
    r = api.client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert '<html lang="zh-CN">' in html and "质检工作台" in html and "API 密钥" in html
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in html and " style=" not in html  # nothing inline: the CSP forbids it
    for asset in re.findall(r'(?:src|href)="(static/[^"?]+)\?v=\w+"', html):
        got = api.client.get("/" + asset)
        assert got.status_code == 200 and got.content, asset
    assert len(re.findall(r'(?:src|href)="static/', html)) == 3


def test_static_files_are_vendored_not_fetched(api):
    files = [p for p in STATIC.rglob("*") if p.is_file()] + [p for p in TEMPLATES.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"workbench.js", "workbench.css", "favicon.svg", "workbench.html"}
    for path in files:
        text = path.read_text(encoding="utf-8")
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s'\"]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)
        assert "@import" not in text and "import(" not in text


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/nope.js"])
def test_static_files_stay_in_their_folder(api, path):
    assert api.client.get(path).status_code == 404


def test_openapi_documents_the_new_endpoints_but_not_the_page(api):
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"/v1/queue", "/v1/stats/overview", "/v1/facets", "/v1/me"} <= set(paths)
    assert "/" not in paths and not any(p.startswith("/static") for p in paths)


# ---------------------------------------------------------------- the JSON endpoints

@pytest.fixture
def graded(api):
    grades = api.grade(examples())
    return api, {g["id"]: g for g in grades}


@pytest.mark.parametrize("path", ["/v1/queue", "/v1/stats/overview", "/v1/facets"])
def test_reviewer_endpoints_need_a_reviewer_key(api, path):
    assert api.client.get(path).status_code == 401
    for who in ("agent", "client"):
        r = api.get(path, who)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    for who in ("reviewer", "admin"):
        assert api.get(path, who).status_code == 200
    # the contract's order of checks: the role before the parameters
    assert api.get(path + "?date_from=not-a-date", "agent").status_code == 403
    assert api.client.get(path + "?date_from=not-a-date").status_code == 401


def test_me_tells_the_role_and_what_the_page_may_show(api):
    assert api.client.get("/v1/me").status_code == 401
    assert api.get("/v1/me", "client").json() == {"role": "client", "name": "crm"}
    agent = api.get("/v1/me", "agent").json()
    assert agent["role"] == "agent" and agent["name"] == "a-01"
    assert [b["id"] for b in agent["behaviors"]] == list(BEHAVIORS)
    assert agent["behaviors"][0] == {"id": "greeting", "label": "问候/开场", "threshold": 0.5}
    assert [d["id"] for d in agent["dimensions"]] == [d.id for d in RUBRIC.dimensions]
    assert agent["grade_bands"][0] == {"label": "优秀", "min": 90.0}
    assert api.get("/v1/me", "reviewer").json()["role"] == "reviewer"


def test_queue_puts_red_lines_first_with_their_reasons(graded):
    api, grades = graded
    page = api.get("/v1/queue?limit=100", "reviewer").json()
    assert page["total"] == 37 and len(page["items"]) == 37 and page["next_offset"] is None
    assert page["facets"] == {"agents": ["a-01", "a-02", "a-03", "a-04", "a-05", "a-06"],
                              "teams": ["team-a", "team-b", "team-c"], "grades": ["优秀", "良好", "合格", "待改进"]}
    rows = page["items"]
    priorities = [r["priority"] for r in rows]
    assert priorities == sorted(priorities, reverse=True)
    red = {g for g, grade in grades.items() if grade["red_line"]}
    assert {r["id"] for r in rows[:len(red)]} == red
    for row in rows:
        grade = grades[row["id"]]
        assert (row["score"], row["grade"], row["red_line"]) == (grade["score"], grade["grade"], grade["red_line"])
        assert row["priority"] == round(sum(x["weight"] for x in row["reasons"]), 1)
        assert any(x["code"] == "red_line" for x in row["reasons"]) == grade["red_line"]
    telling = next(r for r in rows if r["id"] == "ex-ecommerce-02")
    assert "临近等级线：高出「良好」线 1.4 分" in [x["label"] for x in telling["reasons"]]


def test_a_dispute_lifts_a_conversation_and_a_review_lowers_it(graded):
    api, _ = graded

    def row(conv_id, status=""):
        items = api.get(f"/v1/queue?limit=100{status}", "reviewer").json()["items"]
        return next((r for r in items if r["id"] == conv_id), None), [r["id"] for r in items]

    before, order = row("ex-bank-01")
    assert before["priority"] == 0 and order.index("ex-bank-01") > 10
    assert api.post("/v1/conversations/ex-bank-01/disputes", {"item": "greeting", "reason": "我有问候"}, "reviewer").status_code == 201
    disputed, order = row("ex-bank-01")
    assert disputed["open_disputes"] == 1 and [x["code"] for x in disputed["reasons"]] == ["dispute"]
    assert order.index("ex-bank-01") < order.index("ex-ecommerce-02")

    red, _ = row("ex-ecommerce-05")
    r = api.post("/v1/conversations/ex-ecommerce-05/reviews", {"reason": "确认泄露", "red_line": True}, "reviewer")
    assert r.status_code == 201
    reviewed, _ = row("ex-ecommerce-05")
    assert reviewed["reviewed"] and reviewed["priority"] == pytest.approx(red["priority"] * 0.25, abs=0.1)
    assert row("ex-ecommerce-05", "&status=todo")[0] is None
    assert row("ex-ecommerce-05", "&status=done")[0]["id"] == "ex-ecommerce-05"
    assert row("ex-bank-01", "&status=todo")[0] is not None


def test_queue_filters_and_pages(graded):
    api, grades = graded
    by_agent = api.get("/v1/queue?agent_id=a-03&limit=100", "reviewer").json()
    assert {r["id"] for r in by_agent["items"]} == {g for g in grades if g in {c["id"] for c in examples() if c["agent_id"] == "a-03"}}
    team = api.get("/v1/queue?team=team-c&limit=100", "reviewer").json()["items"]
    assert team and {r["team"] for r in team} == {"team-c"}
    good = api.get("/v1/queue?grade=良好&limit=100", "reviewer").json()["items"]
    assert {r["id"] for r in good} == {g for g, grade in grades.items() if grade["grade"] == "良好"}
    dated = api.get("/v1/queue?date_from=2026-11-20&date_to=2026-11-20&limit=100", "reviewer").json()["items"]
    assert {r["id"] for r in dated} == {c["id"] for c in examples() if c["started_at"].startswith("2026-11-20")}
    seen, offset = [], 0
    while offset is not None:
        page = api.get(f"/v1/queue?limit=8&offset={offset}", "reviewer").json()
        assert page["total"] == 37
        seen += [r["id"] for r in page["items"]]
        offset = page["next_offset"]
    assert seen == [r["id"] for r in api.get("/v1/queue?limit=100", "reviewer").json()["items"]]
    assert api.get("/v1/queue?date_from=not-a-date", "reviewer").status_code == 422
    assert api.get("/v1/queue?status=later", "reviewer").status_code == 422


def test_overview_matches_the_grades(graded):
    api, grades = graded
    ov = api.get("/v1/stats/overview", "reviewer").json()
    scores = [g["score"] for g in grades.values()]
    assert ov["total"] == 37 and ov["reviewed"] == 0 and ov["red_line"] == sum(g["red_line"] for g in grades.values())
    assert ov["mean_score"] == pytest.approx(sum(scores) / 37, abs=0.01) and ov["mean_machine_score"] == ov["mean_score"]
    for kind in ("effective", "machine"):
        bins = ov["histogram"][kind]
        assert len(bins) == 10 and sum(b["count"] for b in bins) == 37
        assert bins[9]["count"] == sum(1 for s in scores if s >= 90) and bins[0]["count"] == sum(1 for s in scores if s < 10)
    bands = Counter(g["grade"] for g in grades.values())
    assert [(g["grade"], g["count"], g["machine"]) for g in ov["grades"]] == [
        (b.label, bands[b.label], bands[b.label]) for b in RUBRIC.grade_bands]
    failed = Counter(i["id"] for g in grades.values() for i in g["items"]
                     if i["applicable"] and not i["passed"] and i["kind"] != "bonus")
    assert {f["id"]: f["count"] for f in ov["failed_items"]} == dict(failed)
    assert [f["count"] for f in ov["failed_items"]] == sorted(failed.values(), reverse=True)
    fired = Counter(r["id"] for g in grades.values() for r in g["red_lines"])
    assert {r["id"]: r["count"] for r in ov["red_lines"]} == dict(fired)
    agents = {a["agent_id"]: a for a in ov["agents"]}
    by_agent = {c["id"]: c["agent_id"] for c in examples()}
    for agent, row in agents.items():
        mine = [g["score"] for cid, g in grades.items() if by_agent[cid] == agent]
        assert row["n"] == len(mine) and row["mean_score"] == pytest.approx(sum(mine) / len(mine), abs=0.01)
    team = api.get("/v1/stats/overview?team=team-a", "reviewer").json()
    assert team["total"] == sum(1 for c in examples() if c["metadata"]["team"] == "team-a")


def test_overview_follows_reviews(graded):
    api, grades = graded
    before = api.get("/v1/stats/overview", "reviewer").json()
    r = api.post("/v1/conversations/ex-ecommerce-02/reviews",
                 {"reason": "有道别", "items": [{"id": "polite_closing", "passed": True}]}, "reviewer")
    assert r.status_code == 201
    after = api.get("/v1/stats/overview", "reviewer").json()
    assert after["reviewed"] == 1 and after["mean_score"] > before["mean_score"]
    assert after["mean_machine_score"] == before["mean_machine_score"]
    count = {f["id"]: f["count"] for f in after["failed_items"]}
    assert count["polite_closing"] == {f["id"]: f["count"] for f in before["failed_items"]}["polite_closing"] - 1


def test_personal_numbers_never_leave_the_service_unmasked(graded):
    api, _ = graded
    bodies = [api.client.get("/").text]
    bodies += [api.get(p, "reviewer").text for p in ("/v1/queue?limit=100", "/v1/stats/overview", "/v1/me",
                                                     "/v1/conversations/ex-ecommerce-05", "/v1/conversations/ex-bank-02")]
    for body in bodies:
        for number in FULL_NUMBERS:
            assert number not in body
    assert "139****2431" in bodies[4]


def test_the_memo_recomputes_only_what_changed_and_forgets_on_a_new_watch(graded, monkeypatch):
    api, _ = graded
    from serving.web import queries

    calls = []
    real = queries.triage
    monkeypatch.setattr(queries, "triage", lambda grade, *a, **kw: calls.append(grade.id) or real(grade, *a, **kw))
    memo = TriageMemo()

    def queue(watch=WATCH):
        with api.db.session() as session:
            return review_queue(session, watch, memo, RUBRIC, Filters(), None, None, 100, 0)

    first = queue()
    assert len(calls) == 37
    calls.clear()
    assert queue() == first and calls == []
    api.post("/v1/conversations/ex-bank-01/disputes", {"item": "greeting", "reason": "有问候"}, "reviewer")
    api.post("/v1/conversations/ex-food-02/reviews", {"reason": "复核", "score": 70}, "reviewer")
    changed = queue()
    assert sorted(calls) == ["ex-bank-01", "ex-food-02"]
    assert next(r for r in changed["items"] if r["id"] == "ex-bank-01")["open_disputes"] == 1
    calls.clear()
    stricter = watch_for(RUBRIC, {b: 0.6 for b in BEHAVIORS})
    queue(stricter)
    assert len(calls) == 37


def test_facets_list_agents_teams_and_bands(graded):
    api, _ = graded
    assert api.get("/v1/facets", "admin").json() == {
        "agents": ["a-01", "a-02", "a-03", "a-04", "a-05", "a-06"], "teams": ["team-a", "team-b", "team-c"],
        "grades": ["优秀", "良好", "合格", "待改进"]}
