"""The environment a command or job runs in: settings, store, clock and acting user.

Tests build one directly; the CLI builds one from options and environment variables.
"""
import os
from dataclasses import dataclass, field

from .config import current_time, default_db_url, load_settings
from .errors import ConfigError, NotFound


@dataclass
class App:
    db_url: str
    login: str | None = None
    now_override: object = None        # an aware datetime pinned by --now / ESCALATE_NOW
    settings: object = None
    env: dict = field(default_factory=lambda: os.environ)
    _db: object = None
    _actor: object = None
    urgent: list = field(default_factory=list)   # outbox keys to deliver as the command ends
    may_create: bool = True     # may make a new SQLite file (the CLI: 'escalate init' only)

    @classmethod
    def from_env(cls, db_url=None, login=None, env=None):
        env = os.environ if env is None else env
        return cls(db_url=db_url or env.get("ESCALATE_DB") or default_db_url(),
                   login=login if login is not None else (env.get("ESCALATE_USER") or None), env=env)

    def get_settings(self):
        if self.settings is None:
            self.settings = load_settings(self.env)
        return self.settings

    @property
    def now(self):
        return self.now_override or current_time(self.env)

    @property
    def db(self):
        if self._db is None:
            from .db import open_store
            self._db = open_store(self.db_url, create=self.may_create)
        return self._db

    def close(self):
        if self._db is not None and not self._db.is_closed():
            self._db.close()

    @property
    def actor(self):
        """The acting user: --as, ESCALATE_USER, else the OS login; must be on file."""
        if self._actor is None:
            self.db  # bind the models
            from .models import User
            if self.login is not None and not self.login.strip():
                raise ConfigError("--as needs a login (or leave it out to act as yourself)")
            login = self.login or _os_login()
            user = User.get_or_none(User.login == login)
            if user is None or not user.active:
                raise NotFound(f"Unknown user '{login}': ask an admin to add you "
                               f"(escalate user add {login} ...), or pass --as LOGIN")
            self._actor = user
        return self._actor


def _os_login():
    import getpass
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        raise ConfigError("cannot tell who you are: pass --as LOGIN or set ESCALATE_USER")
