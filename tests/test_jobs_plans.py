"""The sweep finds due clocks through the next_check_at index, never by scanning."""
import datetime as dt


def test_due_clocks_query_uses_the_next_check_index(run, demo, db_url):
    from escalate_cli.context import App
    from jobs.sweep import _due_query
    app = App(db_url=db_url, env={"ESCALATE_CONFIG": run.env["ESCALATE_CONFIG"]})
    db = app.db
    now = dt.datetime(2024, 12, 2, 15, 0, tzinfo=dt.timezone.utc)
    for after in (None, (now - dt.timedelta(hours=1), 7)):
        sql, params = _due_query(now, after, 500).sql()
        if db_url.startswith("sqlite"):
            plan = " ".join(str(r) for r in db.execute_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "sla_clock_next_check_at" in plan, plan
            assert "SCAN sla_clock" not in plan.replace("SCAN sla_clock USING", ""), plan
        else:
            with db.atomic():
                db.execute_sql("SET LOCAL enable_seqscan = off")
                plan = " ".join(r[0] for r in db.execute_sql("EXPLAIN " + sql, params))
            assert "sla_clock_next_check_at" in plan, plan
    app.close()
