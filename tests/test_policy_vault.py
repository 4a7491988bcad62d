"""Retry policy and the token vault."""

import base64
import hashlib
import random

import pytest

from impact_calendar_integration.sync import policy
from impact_calendar_integration.sync.outcomes import Kind, Outcome
from impact_calendar_integration.sync.vault import Vault, VaultKeyError, fernet_for, generate_key


def test_rate_limit_honours_retry_after():
    assert policy.retry_delay(Outcome(Kind.RATE_LIMITED, retry_after=17), 1) == 17
    assert policy.retry_delay(Outcome(Kind.RATE_LIMITED, retry_after=0), 1) == policy.MIN_RATE_LIMIT_DELAY


def test_backoff_grows_is_capped_and_jittered():
    rng = random.Random(7)
    delays = [policy.retry_delay(Outcome(Kind.TRANSIENT), n, rng=rng) for n in range(1, 15)]
    ceilings = [min(policy.MAX_DELAY, policy.BASE_DELAY * 2 ** (n - 1)) for n in range(1, 15)]
    assert all(policy.BASE_DELAY / 2 <= d <= c for d, c in zip(delays, ceilings))
    assert max(delays) <= policy.MAX_DELAY
    assert len({round(d, 3) for d in delays}) > 10  # jitter: no two accounts retry in lockstep


def test_no_retry_for_final_outcomes():
    for kind in (Kind.REJECTED, Kind.AUTH_REVOKED, Kind.DONE, Kind.GONE):
        assert policy.retry_delay(Outcome(kind), 1) is None


def test_vault_round_trip_and_key_change():
    vault = Vault("key one")
    stored = vault.encrypt("1//refresh-token")
    assert "refresh-token" not in stored
    assert vault.decrypt(stored) == "1//refresh-token"
    with pytest.raises(VaultKeyError, match="key changed"):
        Vault("key two").decrypt(stored)
    with pytest.raises(VaultKeyError):
        vault.decrypt("plaintext-token")
    assert vault.encrypt("") == "" and vault.decrypt(None) is None


def test_vault_rotation_keeps_old_secrets_readable():
    old = Vault("old passphrase").encrypt("1//refresh")
    rotated = Vault(["new passphrase", "old passphrase"])
    assert rotated.decrypt(old) == "1//refresh", "an older key still decrypts"
    assert rotated.needs_rotation(old)
    renewed = rotated.encrypt(rotated.decrypt(old))
    assert not rotated.needs_rotation(renewed)
    assert Vault("new passphrase").decrypt(renewed) == "1//refresh", "the newest key encrypts"


def test_vault_accepts_a_generated_key_as_is_and_stretches_passphrases():
    key = generate_key()
    assert fernet_for(key)._signing_key == base64.urlsafe_b64decode(key)[:16]
    stretched = fernet_for("correct horse")
    naive = hashlib.sha256(b"impact_calendar:correct horse").digest()
    assert stretched._signing_key != naive[:16], "a passphrase goes through the KDF"
    assert Vault(key).decrypt(Vault(key).encrypt("x")) == "x"
