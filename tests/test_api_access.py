"""Access control: the whole role x endpoint matrix of api.md, 401 on every endpoint without
a valid key, and 404 for objects a key may not see. One seeded database per backend serves
the module (the checks only read, or write things no other check depends on)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conftest_api import BACKENDS, ROLES, Api, app, example, make_api
from serving import keys
from serving.audit import SYSTEM


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    allowed: tuple[str, ...]
    ok: int = 200
    body: dict | None = None

    def call(self, world: "World", headers: dict, role: str = "admin"):
        path = self.path.format(job=world.job, dispute=world.disputes.get(role, 0), key=world.spare_keys.get(role, 0))
        body = dict(self.body) if self.body is not None else None
        if body is not None and "item" in body:
            body["item"] = ITEM_FOR[role]
        if self.method == "GET":
            return world.api.client.get(path, headers=headers)
        return world.api.client.post(path, json=body if body is not None else {}, headers=headers)


ITEM_FOR = {"admin": "greeting", "reviewer": "need_confirmation", "agent": "polite_closing", "client": "greeting"}
C1 = "/v1/conversations/ex-ecommerce-01"
ENDPOINTS = [
    Endpoint("POST", "/v1/grade", ("admin", "client"), body=example("ex-ecommerce-02")),
    Endpoint("POST", "/v1/jobs", ("admin", "client"), 202, body={"conversations": [example("ex-ecommerce-06")]}),
    Endpoint("GET", "/v1/jobs", ("admin", "client")),
    Endpoint("GET", "/v1/jobs/{job}", ("admin", "client")),
    Endpoint("GET", "/v1/jobs/{job}/results", ("admin", "client")),
    Endpoint("GET", "/v1/conversations", ROLES),
    Endpoint("GET", C1, ROLES),
    Endpoint("POST", C1 + "/reviews", ("admin", "reviewer"), 201, body={"reason": "确认"}),
    Endpoint("POST", C1 + "/disputes", ("admin", "reviewer", "agent"), 201, body={"item": None, "reason": "异议"}),
    Endpoint("GET", "/v1/disputes", ("admin", "reviewer", "agent")),
    Endpoint("POST", "/v1/disputes/{dispute}/resolve", ("admin", "reviewer"), body={"decision": "rejected", "reason": "维持"}),
    Endpoint("GET", "/v1/examples", ("admin", "reviewer")),
    Endpoint("GET", "/v1/stats/agreement", ("admin", "reviewer")),
    Endpoint("GET", "/v1/export/labels", ("admin", "reviewer")),
    Endpoint("GET", "/v1/keys", ("admin",)),
    Endpoint("POST", "/v1/keys", ("admin",), 201, body={"role": "client", "name": "new"}),
    Endpoint("POST", "/v1/keys/{key}/revoke", ("admin",)),
    Endpoint("GET", "/v1/rubric", ("admin",)),
]


@dataclass
class World:
    api: Api
    job: str
    disputes: dict[str, int]
    spare_keys: dict[str, int]
    revoked: str


def _seed(api: Api) -> World:
    conv_a01 = example("ex-ecommerce-01")
    api.grade([conv_a01, example("ex-ecommerce-07")], "client")  # agents a-01 and a-03
    job = api.post("/v1/jobs", {"conversations": [example("ex-telecom-01")]}, "client").json()["id"]
    api.worker().run_until_idle()
    disputes = {role: api.post(C1 + "/disputes", {"item": item, "reason": "异议"}, "reviewer").json()["id"]
                for role, item in (("admin", "survey_invite"), ("reviewer", "result_confirmation"))}
    with api.db.session() as session:
        spare = {role: keys.issue_key(session, "client", f"spare-{role}")[0].id for role in ROLES}
        row, revoked = keys.issue_key(session, "admin", "gone")
        session.commit()
        keys.revoke_key(session, row.id, SYSTEM)
    return World(api, job, disputes, spare, revoked)


@pytest.fixture(scope="module", params=BACKENDS)
def world(request) -> World:
    yield _seed(make_api(request.param))
    app().dependency_overrides.clear()


MATRIX = [pytest.param(e, role, id=f"{e.method} {e.path} as {role}") for e in ENDPOINTS for role in ROLES]


@pytest.mark.parametrize("endpoint,role", MATRIX)
def test_role_matrix(world, endpoint, role):
    r = endpoint.call(world, world.api.h(role), role)
    if role in endpoint.allowed:
        assert r.status_code == endpoint.ok, r.text
    else:
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
@pytest.mark.parametrize("credentials", ["none", "unknown", "revoked", "basic"])
def test_every_endpoint_needs_a_valid_key(world, endpoint, credentials):
    headers = {"none": {}, "unknown": {"Authorization": "Bearer gk_not-a-key"},
               "revoked": {"Authorization": f"Bearer {world.revoked}"},
               "basic": {"Authorization": "Basic YWRtaW46YWRtaW4="}}[credentials]
    r = endpoint.call(world, headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("who,method,path", [
    ("agent", "GET", "/v1/conversations/ex-ecommerce-07"),        # a-03's conversation
    ("agent2", "GET", C1),                                       # a-01's conversation
    ("agent2", "POST", C1 + "/disputes"),
    ("client2", "GET", C1),                                      # submitted by the other client
    ("client2", "GET", "/v1/jobs/{job}"),
    ("client2", "GET", "/v1/jobs/{job}/results"),
    ("admin", "GET", "/v1/conversations/no-such-id"),
    ("admin", "GET", "/v1/jobs/no-such-job"),
    ("reviewer", "POST", "/v1/conversations/no-such-id/reviews"),
    ("reviewer", "POST", "/v1/disputes/123456/resolve"),
])
def test_objects_a_key_may_not_see_are_404(world, who, method, path):
    path = path.format(job=world.job)
    api = world.api
    r = api.client.get(path, headers=api.h(who)) if method == "GET" else \
        api.client.post(path, json={"item": "greeting", "reason": "x"}, headers=api.h(who))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_a_key_sees_what_is_its_own(world):
    api = world.api
    assert api.get(C1, "agent").json()["agent_id"] == "a-01"
    assert api.get(C1, "client").status_code == 200
    assert api.get("/v1/jobs", "client2").json()["total"] == 0
    assert {d["conversation_id"] for d in api.get("/v1/disputes", "agent").json()["items"]} == {"ex-ecommerce-01"}
    assert api.get("/v1/disputes", "agent2").json()["total"] == 0
