"""Token vault: refresh tokens (and MSAL caches) encrypted at rest with Fernet.

Keys are given as a list, newest first: the first encrypts, every one decrypts (``MultiFernet``),
so a new key can be put in front without anyone reconnecting; secrets read with an older key are
re-encrypted with the newest as they are used (``needs_rotation``). A key is either a Fernet key
as ``Fernet.generate_key()`` makes it (used as is) or a passphrase, stretched with
PBKDF2-HMAC-SHA256 so that a weak one cannot be brute-forced cheaply from a database dump.
"""

import base64
import binascii
import functools
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "fernet1:"
KDF_ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-HMAC-SHA256
# A fixed salt: keys must derive the same on every server sharing the database. The stretching,
# not the salt, is what slows a guess down.
KDF_SALT = b"impact_calendar_integration/vault/v1"


class VaultKeyError(Exception):
    """A stored secret cannot be decrypted: the key changed or the data is damaged."""


def generate_key():
    """A new random key, to put in the server configuration."""
    return Fernet.generate_key().decode("ascii")


def _is_fernet_key(secret):
    try:
        return len(secret) == 44 and len(base64.urlsafe_b64decode(secret)) == 32
    except (binascii.Error, ValueError):
        return False


@functools.lru_cache(maxsize=16)
def fernet_for(secret):
    """The Fernet of one configured key (a Fernet key as is, else a stretched passphrase)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if _is_fernet_key(secret):
        return Fernet(secret)
    key = hashlib.pbkdf2_hmac("sha256", secret, KDF_SALT, KDF_ITERATIONS)
    return Fernet(base64.urlsafe_b64encode(key))


class Vault:
    """Encrypts short secrets with the newest of ``secrets``; decrypts with any of them."""

    def __init__(self, secrets):
        if isinstance(secrets, (str, bytes)):
            secrets = [secrets]
        secrets = [secret for secret in secrets if secret]
        if not secrets:
            raise ValueError("the vault needs a non-empty secret")
        self._newest = fernet_for(secrets[0])
        self._fernet = MultiFernet([fernet_for(secret) for secret in secrets])

    def encrypt(self, plaintext):
        if plaintext is None or plaintext == "":
            return plaintext
        return PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored):
        if stored is None or stored == "":
            return stored
        try:
            return self._fernet.decrypt(self._token(stored)).decode("utf-8")
        except InvalidToken as exc:
            raise VaultKeyError(
                "stored token cannot be decrypted: the encryption key changed; reconnect the account"
            ) from exc

    def needs_rotation(self, stored):
        """Whether ``stored`` was encrypted with an older key (re-encrypt it with the newest)."""
        if not stored:
            return False
        try:
            self._newest.decrypt(self._token(stored))
        except InvalidToken:
            return True
        return False

    @staticmethod
    def _token(stored):
        if not stored.startswith(PREFIX):
            raise VaultKeyError("stored token is not in the vault's format")
        return stored[len(PREFIX):].encode("ascii")
