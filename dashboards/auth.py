"""Who is asking: API tokens -> (name, role), and what each role may call.

Tokens live in a TOML file (``mayak token add``) as SHA-256 digests only, so the file leaks
no usable secret. The CLI reaches the running worker's admin API with a machine-local token
file (``data_dir/keys/cli-admin.token``, mode 0600): whoever can read it can also open the
data directory, so it grants nothing new. Without a tokens file, dashboards bound to a
loopback address answer product queries anonymously — a local-development convenience that
``mayak up --demo`` relies on; admin, marketing and research calls always need a token.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mayak.errors import MayakError
from mayak.settings import Settings

ROLES = ("product", "marketing", "researcher", "admin")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


def tokens_path(settings: Settings) -> Path:
    return Path(settings.api_tokens_file) if settings.api_tokens_file else \
        settings.data_dir / "api_tokens.toml"


def cli_token_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "cli-admin.token"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_token(path: Path, name: str, role: str) -> str:
    """Append a new token for ``name``/``role`` to the tokens file; return the token (shown once)."""
    if role not in ROLES:
        raise MayakError(f"unknown role {role!r} -> use one of {', '.join(ROLES)}")
    if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise MayakError(f"token name {name!r}: letters, digits, '-', '_', '.' -> e.g. ana.product")
    token = "mk_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:  # json.dumps of a str is a valid TOML basic string
        out.write(f"\n[[token]]\nname = {json.dumps(name)}\nrole = {json.dumps(role)}\n"
                  f"sha256 = {json.dumps(_digest(token))}\n")
    return token


def ensure_cli_token(settings: Settings) -> str:
    """The machine-local admin token the CLI uses against a running worker (created once)."""
    path = cli_token_path(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("mk_cli_" + secrets.token_urlsafe(32))
    return path.read_text().strip()


class Authenticator:
    """Maps a bearer token to a Principal; reloads the tokens file when it changes."""

    def __init__(self, settings: Settings) -> None:
        self.path = tokens_path(settings)
        self.loopback = settings.dashboards_host in LOOPBACK
        self.cli_token = ensure_cli_token(settings)
        self._mtime: float | None = None
        self._by_digest: dict[str, Principal] = {}

    def _load(self) -> None:
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime == self._mtime:
            return
        entries = tomllib.loads(self.path.read_text()).get("token", []) if mtime else []
        self._by_digest = {e["sha256"]: Principal(e["name"], e["role"])
                           for e in entries if e.get("role") in ROLES}
        self._mtime = mtime

    def principal(self, authorization: str | None) -> Principal | None:
        self._load()
        token = (authorization or "").removeprefix("Bearer ").strip()
        if token:
            if hmac.compare_digest(token, self.cli_token):
                return Principal("cli", "admin")
            return self._by_digest.get(_digest(token))
        if self._mtime is None and self.loopback:
            return Principal("anonymous-local", "product")
        return None
