"""Who is asking: API tokens -> (name, role), and what each role may call.

Tokens live in a TOML file (``mayak token add``) as SHA-256 digests only, so the file leaks
no usable secret. The CLI reaches the running worker's admin API with a machine-local token
file (``data_dir/keys/cli-admin.token``, mode 0600): whoever can read it can also open the
data directory, so it grants nothing new.

Fails closed: there is no anonymous access. A missing, unreadable or malformed tokens file
(renamed, or the data directory wiped) makes every call but the CLI's answer 503 with
``NO_TOKENS``, rather than opening the API or silently refusing real tokens with 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dashboards.roles import ROLES
from mayak.errors import MayakError
from mayak.settings import Settings

NO_TOKENS = (
    "no API tokens configured: run `mayak token add --name NAME --role ROLE` "
    "(the tokens file {path} is missing or unreadable)"
)


class TokensUnavailable(MayakError):
    """The tokens file cannot be read: nobody but the CLI may call the API."""


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


def tokens_path(settings: Settings) -> Path:
    return (
        Path(settings.api_tokens_file)
        if settings.api_tokens_file
        else settings.data_dir / "api_tokens.toml"
    )


def cli_token_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "cli-admin.token"


#: RFC 6750's b64token, at most 512 characters: Mayak's own tokens are "mk_" + URL-safe base64
#: (about 50). Anything else (a NUL, a C1 control or NBSP, a look-alike letter, a comma of two
#: merged header lines, a megabyte) is no token and is never hashed or looked up.
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN_CHARS = 512


def bearer_token(authorization: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or None. The scheme is matched without
    regard to case (RFC 9110 section 11.1: ``bearer`` is ``Bearer``) and followed by one or
    more spaces; a bare token or another scheme is None (RFC 6750 section 2.1). Only HTTP's own
    whitespace is trimmed: ``str.strip`` also dropped U+001F, U+0085 and U+00A0, so a token
    followed by any of them was accepted."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip(" \t")
    if scheme.lower() != "bearer" or len(token) > MAX_TOKEN_CHARS:
        return None
    return token if _B64TOKEN.fullmatch(token) else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_name(name: object) -> bool:
    """A token name (and so a researcher's name): 1-128 letters, digits, '-', '_', '.'."""
    return (
        isinstance(name, str)
        and 0 < len(name) <= 128
        and name.replace("-", "").replace("_", "").replace(".", "").isalnum()
    )


def add_token(path: Path, name: str, role: str) -> str:
    """Append a new token for ``name``/``role`` to the tokens file; return the token (shown
    once)."""
    if role not in ROLES:
        raise MayakError(f"unknown role {role!r} -> use one of {', '.join(ROLES)}")
    if not valid_name(name):
        raise MayakError(f"token name {name!r}: letters, digits, '-', '_', '.' -> e.g. ana.product")
    token = "mk_" + secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:  # json.dumps of a str is a valid TOML basic string
        out.write(
            f"\n[[token]]\nname = {json.dumps(name)}\nrole = {json.dumps(role)}\n"
            f"sha256 = {json.dumps(_digest(token))}\n"
        )
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
        self.cli_token = ensure_cli_token(settings)
        self._stamp: tuple | None = None
        self._by_digest: dict[str, Principal] = {}

    def _load(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                entries = tomllib.loads(self.path.read_text()).get("token", [])
                self._by_digest = {
                    e["sha256"]: Principal(e["name"], e["role"])
                    for e in entries
                    if isinstance(e, dict)
                    and e.get("role") in ROLES
                    and isinstance(e.get("sha256"), str)
                    and isinstance(e.get("name"), str)
                }
                self._stamp = stamp
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self._stamp, self._by_digest = None, {}
            raise TokensUnavailable(NO_TOKENS.format(path=self.path)) from exc

    def principal(self, authorization: str | None) -> Principal | None:
        """The caller, or None (no or unknown token). Raises ``TokensUnavailable`` for every
        caller but the CLI when the tokens file cannot be read."""
        token = bearer_token(authorization)
        if token and hmac.compare_digest(token.encode(), self.cli_token.encode()):
            return Principal("cli", "admin")
        self._load()
        # a dict keyed by the SHA-256 of the token: lookup time depends on the digest of what
        # was sent, never on how much of a real token it shares, so it leaks nothing that helps
        # guess one (the CLI token, compared as itself, uses hmac.compare_digest above)
        return self._by_digest.get(_digest(token)) if token else None
