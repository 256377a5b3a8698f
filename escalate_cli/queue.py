"""The queue's first page without scanning: candidate ids from index-ordered branches.

``escalate list`` sorts by priority, then by the governing SLA due time (response due while
PENDING, resolution due while IN PROGRESS, none otherwise), then by age, and shows the first
page. Written as one query, the visibility rule (my pods OR reported by me OR owned by me OR
consulted) and the status-dependent due time force the database to read every open
escalation it may show and sort them all: at a million escalations, hundreds of thousands.

Here the same order is reached through branches that each follow an index in order and stop
after one page: one per (pod, status) for the pods the user manages (or per status for the
leaders, who see everything), plus the user's own escalations (reported, owned, consulted)
outside those pods, which are few. Every row of the true first page is the first page of
its branch, so the union of the branches' pages holds it; the caller's query, with its usual
ORDER BY and LIMIT, picks it from these candidates.
"""
ALL_SEEING = ("coo", "ceo", "admin")
DUE_COLUMN = {"pending": "response_due", "in_progress": "resolution_due"}
NO_DUE = "CAST(NULL AS TIMESTAMP)"
QUEUE_DUE = ('CASE WHEN "status" = \'pending\' THEN "response_due" '
             'WHEN "status" = \'in_progress\' THEN "resolution_due" END')


def candidate_ids(user, statuses, pods, only_pod=None, limit=200, dialect="sqlite"):
    """SQL and params selecting the ids among which the first ``limit`` of the queue are.

    ``pods``: the pods ``user`` manages (ignored for leaders); ``only_pod``: the --pod filter.
    """
    p = "%s" if dialect == "postgres" else "?"
    branches, params = [], []

    def page(scope, scope_params, status):
        """One status within one scope, in queue order, one page long (an index in order)."""
        due = DUE_COLUMN.get(status)
        if due:
            order, value = f'"priority_rank", "{due}", "created_at"', f'"{due}"'
            where = f'{scope} AND "status" = \'{status}\' AND "{due}" IS NOT NULL'
        else:
            order, value = '"priority_rank", "created_at"', NO_DUE
            where = f'{scope} AND "status" = \'{status}\''
        branches.append(f'SELECT * FROM (SELECT "id", "priority_rank", {value} AS "due", "created_at" '
                        f'FROM "escalation" WHERE {where} ORDER BY {order} LIMIT {p}) AS b{len(branches)}')
        params.extend(scope_params + [limit])
        if due:   # never written by escalate, but a row without a due time must not vanish
            branches.append(f'SELECT "id", "priority_rank", {NO_DUE} AS "due", "created_at" '
                            f'FROM "escalation" WHERE {scope} AND "status" = \'{status}\' '
                            f'AND "{due}" IS NULL')
            params.extend(scope_params)

    if user.role in ALL_SEEING:
        scope, scope_params = ('"pod_id" = ' + p, [only_pod]) if only_pod is not None else ("1 = 1", [])
        for status in statuses:
            page(scope, scope_params, status)
    else:
        scope_pods = [x for x in pods if only_pod is None or x == only_pod]
        for pod in scope_pods:
            for status in statuses:
                page(f'"pod_id" = {p}', [pod], status)
        # the user's own escalations outside those pods: few, so taken whole; "outside" as
        # ranges of pod_id, which an index can seek (a NOT IN would be checked row by row)
        if only_pod is not None and scope_pods:
            outside = []                       # all of that pod is in the branches above
        elif only_pod is not None:
            outside = [(f'"pod_id" = {p}', [only_pod])]
        else:
            outside = _outside(scope_pods, p)
        status_list = ", ".join(f"'{s}'" for s in statuses)
        for source, who in (('"escalation"', f'"reporter_id" = {p}'),
                            ('"escalation"', f'"owner_id" = {p}'),
                            ('"consulted" JOIN "escalation" ON "escalation"."id" = "escalation_id"',
                             f'"user_id" = {p}')):
            for cond, cond_params in outside:
                branches.append(f'SELECT "escalation"."id", "priority_rank", {QUEUE_DUE} AS "due", '
                                f'"created_at" FROM {source} WHERE {who} AND "status" IN ({status_list}) '
                                f'AND {cond}')
                params.extend([user.id] + cond_params)
    sql = (f'SELECT "id" FROM ({" UNION ".join(branches)}) AS q '
           f'ORDER BY "priority_rank", "due" IS NULL, "due", "created_at" LIMIT {p}')
    return sql, params + [limit]


def _outside(pods, p):
    """pod_id outside ``pods`` (or none), as conditions an index on pod_id can seek."""
    if not pods:
        return [("1 = 1", [])]
    pods = sorted(set(pods))
    out = [('"pod_id" IS NULL', []), (f'"pod_id" < {p}', [pods[0]])]
    out += [(f'"pod_id" > {p} AND "pod_id" < {p}', [a, b]) for a, b in zip(pods, pods[1:]) if b > a + 1]
    out.append((f'"pod_id" > {p}', [pods[-1]]))
    return out
