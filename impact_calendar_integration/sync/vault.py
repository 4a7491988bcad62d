"""Token vault: refresh tokens (and MSAL caches) encrypted at rest with Fernet."""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "fernet1:"


class VaultKeyError(Exception):
    """A stored secret cannot be decrypted: the key changed or the data is damaged."""


class Vault:
    """Encrypts short secrets with a key derived from one configured secret string.

    Any secret string works (a Fernet key or a passphrase): it is hashed into the 32-byte key
    Fernet wants, so admins need no special format.
    """

    def __init__(self, secret):
        if not secret:
            raise ValueError("the vault needs a non-empty secret")
        if isinstance(secret, str):
            secret = secret.encode("utf-8")
        key = base64.urlsafe_b64encode(hashlib.sha256(b"impact_calendar:" + secret).digest())
        self._fernet = Fernet(key)

    def encrypt(self, plaintext):
        if plaintext is None or plaintext == "":
            return plaintext
        return PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored):
        if stored is None or stored == "":
            return stored
        if not stored.startswith(PREFIX):
            raise VaultKeyError("stored token is not in the vault's format")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise VaultKeyError(
                "stored token cannot be decrypted: the encryption key changed; reconnect the account"
            ) from exc
