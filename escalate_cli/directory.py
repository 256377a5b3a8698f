"""People and records: users, pods, teams, CRM imports, the first admin and the demo."""
import csv
import datetime as dt
import io
import re
from decimal import Decimal, InvalidOperation

import peewee as pw

from .domain import atomic, is_one_line, require_role
from .errors import Conflict, NotFound, Refused
from .models import ROLES, Account, Contact, Contract, Invoice, Pod, Team, TeamMember, User

EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


def valid_email(value):
    return bool(value) and len(value) <= 320 and EMAIL_RE.match(value) is not None


def _check_email(value, message="Invalid email address"):
    value = (value or "").strip()
    if not valid_email(value):
        raise Refused(f"{message}: {value!r}" if value else message)
    return value.lower()


def _one_line(value, what):
    """Names and titles go into email headers, subjects and table cells: one line each."""
    if not is_one_line(value):
        raise Refused(f"The {what} must be one line (no line breaks or control characters)")
    return value


def _check_login(login):
    login = (login or "").strip()
    if not LOGIN_RE.match(login):
        raise Refused(f"Invalid login {login!r}: use lowercase letters, digits, '.', '_' or '-'")
    return login


def add_user(app, login, name, email, role, pod=None, phone=None, title=None, actor_check=True):
    if actor_check:
        require_role(app.actor, ("admin",), "add users")
    login = _check_login(login)
    _check_role(role)
    name = _one_line((name or "").strip() or login, "name")
    title = _one_line(title, "title") if title else title
    phone = _check_phone(phone)
    email = _check_email(email)
    pod_obj = _pod_named(pod) if pod else None
    with atomic():
        if User.select().where(User.login == login).exists():
            raise Conflict(f"User '{login}' already exists")
        return User.create(login=login, name=name, email=email, role=role, phone=phone or None,
                           title=title or None, pod=pod_obj.id if pod_obj else None,
                           created_at=app.now)


PHONE_RE = re.compile(r"^\+?[0-9][0-9 ().-]{4,24}$")


def _check_role(role):
    if role not in ROLES:
        raise Refused(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def _pod_named(name):
    pod = Pod.get_or_none(Pod.name == name)
    if pod is None:
        raise Refused(f"Unknown pod '{name}': add it first (escalate pod add)")
    return pod


def _check_phone(phone):
    phone = (phone or "").strip()
    if phone and not PHONE_RE.match(phone):
        raise Refused(f"Invalid phone number {phone!r}: use international format, "
                      f"e.g. +15550100")
    return phone or None


def update_user(app, login, name=None, email=None, role=None, pod=None, phone=None,
                title=None, active=None):
    """Change a user's record (admins). ``pod=""`` takes them out of their pod."""
    require_role(app.actor, ("admin",), "change users")
    user = User.get_or_none(User.login == (login or "").strip())
    if user is None:
        raise NotFound(f"Unknown user '{login}'")
    values = {}
    if name is not None:
        values["name"] = _one_line(name.strip() or user.login, "name")
    if email is not None:
        values["email"] = _check_email(email)
    if role is not None:
        values["role"] = _check_role(role)
    if pod is not None:
        values["pod"] = _pod_named(pod).id if pod else None
    if phone is not None:
        values["phone"] = _check_phone(phone)
    if title is not None:
        values["title"] = _one_line(title, "title") if title else None
    if active is not None:
        if not active and user.id == app.actor.id:
            raise Refused("You cannot deactivate yourself")
        values["active"] = active
    if user.role == "admin" and (values.get("role", "admin") != "admin"
                                 or values.get("active") is False):
        if user.id == app.actor.id:
            raise Refused("You cannot take away your own admin role: ask another admin")
        others = User.select().where((User.role == "admin") & (User.active == True)  # noqa: E712
                                     & (User.id != user.id)).exists()
        if not others:
            raise Refused(f"{user.login} is the last admin: make someone else admin first")
    if not values:
        raise Refused("Nothing to change: give --name, --email, --role, --pod, --phone, "
                      "--title, --active or --inactive")
    with atomic():
        User.update(**values).where(User.id == user.id).execute()
    return User.get_by_id(user.id)


def list_pods(app):
    app.actor
    return list(Pod.select().order_by(Pod.name))


def pod_rows(app):
    """Each pod with its manager and how many active people it has."""
    pods = list_pods(app)
    counts = dict(User.select(User.pod, pw.fn.COUNT(User.id))
                  .where(User.pod.is_null(False) & (User.active == True))  # noqa: E712
                  .group_by(User.pod).tuples())
    return [{"name": p.name, "manager": p.manager.login if p.manager_id else None,
             "manager_name": p.manager.name if p.manager_id else None,
             "members": counts.get(p.id, 0)} for p in pods]


def list_teams(app):
    app.actor
    return list(Team.select().order_by(Team.key))


def team_rows(app):
    """Each team with its address and its members' logins."""
    teams = list_teams(app)
    members = {}
    for team_id, login in (TeamMember.select(TeamMember.team, User.login).join(User)
                           .order_by(User.login).tuples()):
        members.setdefault(team_id, []).append(login)
    return [{"key": t.key, "name": t.name, "email": t.email, "active": t.active,
             "members": ", ".join(members.get(t.id, []))} for t in teams]


def list_users(app):
    app.actor  # any known user may read the directory
    return list(User.select().order_by(User.login))


def add_pod(app, name, manager_login):
    require_role(app.actor, ("admin",), "add pods")
    name = (name or "").strip()
    if not name:
        raise Refused("Please provide a pod name")
    _one_line(name, "pod name")
    manager = User.get_or_none(User.login == manager_login)
    if manager is None or manager.role not in ("manager", "coo", "ceo", "admin"):
        raise Refused(f"Invalid manager '{manager_login}': a pod's manager must be a user with role manager")
    with atomic():
        if Pod.select().where(Pod.name == name).exists():
            raise Conflict(f"Pod '{name}' already exists")
        return Pod.create(name=name, manager=manager.id)


def set_user_pod(app, login, pod_name):
    require_role(app.actor, ("admin",), "move users between pods")
    user = User.get_or_none(User.login == login)
    pod = Pod.get_or_none(Pod.name == pod_name)
    if user is None:
        raise NotFound(f"Unknown user '{login}'")
    if pod is None:
        raise Refused(f"Unknown pod '{pod_name}'")
    with atomic():
        User.update(pod=pod.id).where(User.id == user.id).execute()


def add_team(app, key, name, email, members=()):
    require_role(app.actor, ("admin",), "add teams")
    key = _check_login(key)
    _one_line(name or key, "team name")
    email = _check_email(email) if email else None
    users = []
    for login in members:
        u = User.get_or_none(User.login == login)
        if u is None:
            raise Refused(f"Unknown user '{login}'")
        users.append(u)
    with atomic():
        if Team.select().where(Team.key == key).exists():
            raise Conflict(f"Team '{key}' already exists")
        team = Team.create(key=key, name=(name or key).strip(), email=email)
        for u in users:
            TeamMember.create(team=team.id, user=u.id)
    return team


# -- bootstrap ----------------------------------------------------------------------------

def bootstrap_admin(app, login, email, name=None):
    """The first admin; refused once there is one (then admins add users)."""
    login = _check_login(login)
    email = _check_email(email)
    with atomic():
        if User.select().where(User.role == "admin").exists():
            existing = User.get_or_none(User.login == login)
            if existing is not None and existing.role == "admin":
                return existing
            raise Refused("There is already an admin: ask them to add you (escalate user add)")
        return User.create(login=login, name=(name or login).strip(), email=email, role="admin",
                           created_at=app.now)


# -- CSV import ---------------------------------------------------------------------------

IMPORT_HEADERS = {
    "accounts": ("name", "strategic", "annual_revenue"),
    "contacts": ("account", "name", "email", "phone", "title"),
    "contracts": ("code", "account", "candidate", "title", "bill_rate", "pay_rate", "start_date"),
    "invoices": ("number", "contract", "period", "hours", "bill_rate"),
}
OPTIONAL_HEADERS = {"invoices": ("pay_rate",), "contacts": (), "accounts": (), "contracts": ()}


class RowError(ValueError):
    pass


def _money(value, field, required=True):
    value = (value or "").strip().replace("$", "").replace(",", "")
    if not value:
        if required:
            raise RowError(f"{field} is required")
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise RowError(f"{field} {value!r} is not an amount")
    if not d.is_finite() or d < 0 or d >= Decimal("1e12"):
        raise RowError(f"{field} {value!r} is out of range")
    if d != d.quantize(Decimal("0.01")):      # money is exact: never round it silently
        raise RowError(f"{field} {value!r} has more than two decimals")
    return d.quantize(Decimal("0.01"))


PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _period(value):
    value = _text(value, "period", limit=20)
    from .timeparse import year_in_range
    if not PERIOD_RE.match(value) or not year_in_range(int(value[:4])):
        raise RowError(f"period {value!r} is not a month like 2024-11")
    return value


def _bool(value, field):
    v = (value or "").strip().lower()
    if v in ("1", "true", "yes", "y", "t"):
        return True
    if v in ("", "0", "false", "no", "n", "f"):
        return False
    raise RowError(f"{field} {value!r} is not yes/no")


def _date(value, field):
    try:
        return dt.date.fromisoformat((value or "").strip())
    except ValueError:
        raise RowError(f"{field} {value!r} is not a date like 2024-08-15")


def _text(value, field, required=True, limit=200):
    value = (value or "").strip()
    if required and not value:
        raise RowError(f"{field} is required")
    if "\x00" in value:
        raise RowError(f"{field} contains a NUL character")
    if not is_one_line(value):
        raise RowError(f"{field} must be one line (no line breaks or control characters)")
    if len(value) > limit:
        raise RowError(f"{field} is longer than {limit} characters")
    return value or None


def _parse_row(kind, row, cache):
    if kind == "accounts":
        return {"name": _text(row["name"], "name"),
                "strategic": _bool(row["strategic"], "strategic"),
                "annual_revenue": _money(row["annual_revenue"], "annual_revenue", required=False)}
    if kind == "contacts":
        email = (row["email"] or "").strip()
        if not valid_email(email):
            raise RowError(f"email {email!r} is not a valid address")
        return {"account": _account_id(row["account"], cache), "name": _text(row["name"], "name"),
                "email": email.lower(), "phone": _text(row["phone"], "phone", required=False, limit=50),
                "title": _text(row["title"], "title", required=False)}
    if kind == "contracts":
        return {"code": _text(row["code"], "code", limit=100),
                "account": _account_id(row["account"], cache),
                "candidate": _text(row["candidate"], "candidate"),
                "title": _text(row["title"], "title", required=False),
                "bill_rate": _money(row["bill_rate"], "bill_rate"),
                "pay_rate": _money(row["pay_rate"], "pay_rate"),
                "start_date": _date(row["start_date"], "start_date")}
    if kind == "invoices":
        code = _text(row["contract"], "contract", limit=100)
        contract = cache.setdefault(("contract", code), Contract.get_or_none(Contract.code == code))
        if contract is None:
            raise RowError(f"unknown contract {code!r}")
        hours = _money(row["hours"], "hours")
        return {"number": _text(row["number"], "number", limit=100), "contract": contract.id,
                "period": _period(row["period"]), "hours": hours,
                "bill_rate": _money(row["bill_rate"], "bill_rate"),
                "pay_rate": _money(row.get("pay_rate"), "pay_rate", required=False)}
    raise AssertionError(kind)


def _account_id(name, cache):
    name = _text(name, "account")
    key = ("account", name)
    if key not in cache:
        acc = Account.get_or_none(Account.name == name)
        cache[key] = acc.id if acc else None
    if cache[key] is None:
        raise RowError(f"unknown account {name!r}")
    return cache[key]


NATURAL_KEY = {"accounts": "name", "contacts": "email", "contracts": "code", "invoices": "number"}
MODEL = {"accounts": Account, "contacts": Contact, "contracts": Contract, "invoices": Invoice}


def read_csv(path):
    """Text of a CSV file: UTF-8 (with or without BOM), else a clear error."""
    from .files import read_user_file
    raw = read_user_file(path, kind="CSV file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refused(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV")


def _first_line(last, row):
    """The line a row starts on (``line_num`` is its last: a quoted field may span lines)."""
    values = [v for v in row.values() if isinstance(v, str)] + list(row.get(None) or [])
    return last - sum(v.count("\n") for v in values)


def import_csv(app, kind, path, skip_invalid=False, progress=None):
    """Upsert rows by natural key. Bad rows: ``FILE:LINE: reason``; all or nothing by default.

    Returns (created, updated, errors). ``progress`` is called with the number of rows done.
    """
    require_role(app.actor, ("admin", "manager", "coo", "ceo", "finance"), "import records")
    if kind not in IMPORT_HEADERS:
        raise Refused(f"Unknown kind {kind!r}: choose one of {', '.join(IMPORT_HEADERS)}")
    text = read_csv(path)
    if "\x00" in text:
        raise Refused(f"{path}: contains NUL bytes; is it really a CSV file?")
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise Refused(f"{path}:1: {exc}")
    missing = [h for h in IMPORT_HEADERS[kind] if h not in header]
    if missing:
        raise Refused(f"{path}:1: missing column(s) {', '.join(missing)}; expected header "
                      f"{','.join(IMPORT_HEADERS[kind] + OPTIONAL_HEADERS[kind])}")
    reader.fieldnames = header
    cache, rows, errors, seen = {}, [], [], {}
    key_field = NATURAL_KEY[kind]
    last = reader.line_num
    try:
        for row in reader:
            line, last = _first_line(reader.line_num, row), reader.line_num
            if None in row:
                errors.append(f"{path}:{line}: too many fields")
                continue
            if None in row.values():
                errors.append(f"{path}:{line}: too few fields (expected {len(header)})")
                continue
            try:
                values = _parse_row(kind, row, cache)
            except RowError as exc:
                errors.append(f"{path}:{line}: {exc}")
                continue
            k = values[key_field]
            if k in seen:
                errors.append(f"{path}:{line}: duplicate {key_field} {k!r} (first on line {seen[k]})")
                continue
            seen[k] = line
            rows.append(values)
    except csv.Error as exc:
        hint = " (a quote that is never closed?)" if "end of data" in str(exc) else ""
        errors.append(f"{path}:{last + 1}: {exc}{hint}")
    if errors and not skip_invalid:
        return 0, 0, errors
    model = MODEL[kind]
    key_col = getattr(model, key_field)
    created = updated = 0
    with atomic():
        for i in range(0, len(rows), 500):
            chunk = rows[i:i + 500]
            existing = {getattr(r, key_field): r.id for r in
                        model.select(model.id, key_col).where(key_col.in_([c[key_field] for c in chunk]))}
            for values in chunk:
                if kind == "invoices":
                    values["imported_at"] = app.now
                if values[key_field] in existing:
                    model.update(**values).where(model.id == existing[values[key_field]]).execute()
                    updated += 1
                else:
                    model.insert(**values).execute()
                    created += 1
            if progress:
                progress(len(chunk))
    return created, updated, errors


