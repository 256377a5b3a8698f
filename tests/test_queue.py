"""The queue's first page read through index-ordered branches (escalate_cli/queue.py) is the
page the plain query gives: for managers of one or several pods with escalations of their
own elsewhere, ICs and leaders, with and without --pod and --status."""
import os
import sys

import pytest

from escalate_cli import domain
from escalate_cli.context import App
from escalate_cli.models import Consulted, Escalation, Pod, User

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
EVERY_PRIORITY = ["critical", "high", "medium", "low"]   # forces the plain query


@pytest.fixture
def store(db_url, config_file):
    sys.path.insert(0, BENCH)
    try:
        import generate
    finally:
        sys.path.remove(BENCH)
    env = dict(os.environ, ESCALATE_CONFIG=str(config_file))
    generate.generate(db_url, 600, pods=3, log=lambda m: None, env=env)
    app = App.from_env(db_url=db_url, env=dict(env, ESCALATE_NOW="2024-12-04T10:00:00-05:00"))
    app.db.connect(reuse_if_open=True)
    manager = User.get(User.login == "manager.p01")
    Pod.update(manager=manager.id).where(Pod.name == "Recruiting Pod 03").execute()
    elsewhere = [e.id for e in Escalation.select(Escalation.id).where(
        (Escalation.pod == Pod.get(Pod.name == "Recruiting Pod 02").id)
        & (Escalation.status != "resolved")).limit(6)]
    Escalation.update(owner=manager.id).where(Escalation.id.in_(elsewhere[:3])).execute()
    Escalation.update(pod=None).where(Escalation.id == elsewhere[3]).execute()
    for eid in elsewhere[3:]:
        Consulted.insert(escalation=eid, user=manager.id, added_at=app.now).execute()
    yield app
    app.close()


@pytest.mark.parametrize("login", ["manager.p01", "manager.p02", "ic.p02.001", "olivia.park"])
def test_first_page_is_the_plain_querys(store, login):
    app = store
    app.login, app._actor = login, None
    for statuses in (None, ["pending"], ["on_hold", "escalated"], list(domain.STATUS_LABEL)):
        for pod in (None, "Recruiting Pod 01", "Recruiting Pod 02"):
            for limit in (5, 40, 1000):
                fast = [e.code for e in domain.list_escalations(app, statuses=statuses, pod=pod,
                                                                limit=limit, brief=True)]
                plain = [e.code for e in domain.list_escalations(app, statuses=statuses, pod=pod,
                                                                 limit=limit, priorities=EVERY_PRIORITY)]
                assert fast == plain, (login, statuses, pod, limit)
