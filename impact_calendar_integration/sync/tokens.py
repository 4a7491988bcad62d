"""The credentials of one connected account, as the clients and the vault see them."""

from dataclasses import dataclass, field


@dataclass
class TokenSet:
    """What a client needs to act for one account; the engine stores it encrypted.

    Each provider uses the fields its client needs: OAuth tokens (``access_token``,
    ``refresh_token``, ``expires_at`` in epoch seconds), or a serialized token cache that holds
    a rotating refresh token (``msal_cache``, ``account_id``), or a server and an app-specific
    password (``server_url``, ``username``, ``password``; ``calendar_home`` found at connect
    time; ``calendar_url``: the calendar a connect made before 1.0.2, adopted as the account's
    ``calendar_id`` by the 1.0.2 migration). ``extra``: whatever else a provider keeps (JSON values, secrets
    included), so that a new provider needs no new field here.
    """

    # repr=False: a TokenSet in a log line or traceback must not print the secrets.
    access_token: str = field(default=None, repr=False)
    refresh_token: str = field(default=None, repr=False)
    expires_at: float = None
    msal_cache: str = field(default=None, repr=False)
    account_id: str = None
    server_url: str = None
    username: str = None
    password: str = field(default=None, repr=False)
    calendar_home: str = None
    calendar_url: str = None
    extra: dict = field(default=None, repr=False)
