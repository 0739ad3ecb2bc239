"""Secrets the server must read back (a webhook's signing secret), sealed at rest.

A webhook secret cannot be hashed like an API token: every delivery is signed with it. So
it is encrypted (Fernet: AES-128-CBC with an HMAC-SHA256 tag) under a key derived from
the app's SECRET_KEY, and a copy of the database alone does not give it away. Keys in
SECRET_KEY_FALLBACKS still open what they sealed, so SECRET_KEY can be rotated; a secret
sealed under a key the server no longer has cannot be opened (SecretUnreadable), and an
admin sets it again.

Values written before sealing existed have no prefix: they open as they are, and are
sealed by the workers' next sweep (webhooks.seal_plain_secrets) or delivery
(webhook_outbox.claim), whichever comes first.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_PREFIX = "sealed:v1:"
# Names what the derived key is for, so the same SECRET_KEY gives unrelated keys elsewhere.
_KEY_PURPOSE = b"review-workbench/sealed-secrets/v1"


class SecretUnreadable(Exception):
    """A sealed value that none of the server's keys opens."""


def _fernet(secret_key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEY_PURPOSE).derive(
        secret_key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


class SecretBox:
    """Seals with SECRET_KEY's key; opens with it or any fallback's."""

    def __init__(self, secret_key: str, fallbacks: Iterable[str] = ()) -> None:
        keys = [secret_key, *(key for key in fallbacks if key and key != secret_key)]
        self._fernet = MultiFernet([_fernet(key) for key in keys])

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SecretBox:
        fallbacks = config.get("SECRET_KEY_FALLBACKS") or ()
        return cls(str(config["SECRET_KEY"]), [str(key) for key in fallbacks])

    def seal(self, plain: str) -> str:
        token = self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")
        return SEALED_PREFIX + token

    def open(self, stored: str) -> str:
        """The plain secret. A value stored before sealing is returned as it is."""
        if not is_sealed(stored):
            return stored
        try:
            plain = self._fernet.decrypt(stored.removeprefix(SEALED_PREFIX).encode("ascii"))
        except (InvalidToken, ValueError) as error:
            raise SecretUnreadable(
                "sealed under a SECRET_KEY this server does not have; set the secret again"
            ) from error
        return plain.decode("utf-8")


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED_PREFIX)
