"""API keys: where they come from, how they are generated, how a request's key is checked.

Sources, first found wins: the ``LOYALTY_API_KEYS`` environment variable (JSON
``{"storefront": KEY | [KEY, ...], ...}``), then the keys file (default
``LOYALTY_HOME/api_keys.json``). In the local profile ``ensure_local_keys`` creates the file once
(mode 0600, created exclusively so concurrent starters cannot overwrite each other). Keys are
compared by SHA-256 digest; no key is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loyalty_ml.errors import ConfigError
from loyalty_ml.serving.config import AuthConfig

KEY_NAMES = ("storefront", "campaigns", "admin")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True)
class KeyRing:
    """Key digest → the scopes it carries."""

    scopes_by_digest: dict[bytes, frozenset[str]]

    @classmethod
    def from_mapping(
        cls, keys: Mapping[str, str | list[str]], key_scopes: Mapping[str, Sequence[str]]
    ) -> KeyRing:
        table: dict[bytes, frozenset[str]] = {}
        for name, value in keys.items():
            if name not in key_scopes:
                raise ConfigError(f"API key {name!r} has no entry in auth.key_scopes")
            values = [value] if isinstance(value, str) else list(value)
            for key in values:
                if not isinstance(key, str) or len(key) < 16:
                    raise ConfigError(f"API key {name!r} must be a string of 16+ characters")
                table[_digest(key)] = frozenset(key_scopes[name])
        return cls(table)

    def scopes(self, key: str | None) -> frozenset[str] | None:
        """The scopes of ``key``; ``None`` when the key is missing or unknown."""
        if not key:
            return None
        digest = _digest(key)
        for known, scopes in self.scopes_by_digest.items():
            if hmac.compare_digest(known, digest):
                return scopes
        return None

    def __len__(self) -> int:
        return len(self.scopes_by_digest)


def generate_keys(names: Iterable[str] = KEY_NAMES) -> dict[str, str]:
    return {name: f"lml_{name[:2]}_{secrets.token_urlsafe(24)}" for name in names}


def ensure_local_keys(path: Path) -> bool:
    """Create the keys file (0600) unless it exists; True when this call created it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(generate_keys(), indent=2).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    return True


def read_keys(auth: AuthConfig) -> dict[str, str | list[str]] | None:
    raw = os.environ.get(auth.keys_env)
    source = f"${auth.keys_env}"
    if not raw:
        path = auth.keys_path
        if not path.exists():
            return None
        raw, source = path.read_text(), str(path)
    try:
        keys = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"API keys in {source} are not valid JSON") from exc
    if not isinstance(keys, dict) or not keys:
        raise ConfigError(f"API keys in {source} must be a non-empty JSON object")
    return keys


def load_keyring(auth: AuthConfig) -> KeyRing:
    keys = read_keys(auth)
    if keys is None:
        raise ConfigError(
            f"no API keys: set ${auth.keys_env} or create {auth.keys_path} "
            "(`loyalty serve` generates one in the local profile)"
        )
    return KeyRing.from_mapping(keys, auth.key_scopes)
