"""Google OAuth 2.0 for a web server app: consent URL (PKCE S256), code exchange, revocation.

Plain functions over ``requests``: no Odoo, no state. The caller signs and checks ``state`` and
keeps the code verifier in the user's session until the callback.
"""

import base64
import hashlib
import json
import logging
import secrets
import time
from urllib.parse import urlencode

import requests

from .config import GOOGLE_SCOPES
from ...outcomes import AuthRevoked, Kind, Outcome, ProviderError
from ...tokens import TokenSet

_logger = logging.getLogger(__name__)


def new_code_verifier():
    """PKCE verifier (RFC 7636): 43..128 unreserved chars; 64 random bytes give 86."""
    return secrets.token_urlsafe(64)


def code_challenge(code_verifier):
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(config, redirect_uri, state, code_verifier, scopes=GOOGLE_SCOPES):
    params = {
        "client_id": config.client_id,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(scopes),
        # offline + consent: Google only returns a refresh token on a fresh consent.
        "access_type": "offline",
        "prompt": "consent",
        # Keeps what an earlier consent of this app granted: a switch from the main calendar to a
        # dedicated one still needs to remove the classes it left in the main calendar.
        "include_granted_scopes": "true",
        "state": state,
        "code_challenge": code_challenge(code_verifier),
        "code_challenge_method": "S256",
    }
    return f"{config.auth_endpoint}?{urlencode(params)}"


def exchange_code(config, code, redirect_uri, code_verifier):
    """Trade the callback's code for tokens: returns (TokenSet, email of the Google account)."""
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "code_verifier": code_verifier,
    }
    payload = _post_token_endpoint(config, data)
    if not payload.get("access_token") or not payload.get("refresh_token"):
        raise ProviderError(Outcome(Kind.REJECTED, message="Google did not return an offline refresh token."))
    tokens = TokenSet(
        access_token=payload["access_token"],
        refresh_token=payload["refresh_token"],
        expires_at=time.time() + float(payload.get("expires_in") or 3600),
    )
    return tokens, _email_from_id_token(payload.get("id_token"))


def revoke(config, token):
    """Revoke the grant behind ``token`` at Google; best effort, True when Google confirmed."""
    try:
        response = requests.post(
            config.revoke_endpoint,
            data={"token": token},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            timeout=config.timeout,
        )
    except requests.RequestException as error:
        _logger.warning("Google token revocation failed: %s", type(error).__name__)
        return False
    if response.status_code == 200:
        return True
    # 400 invalid_token: already revoked or expired, which is what we wanted anyway.
    _logger.info("Google token revocation answered HTTP %s", response.status_code)
    return False


def _post_token_endpoint(config, data):
    try:
        response = requests.post(config.token_endpoint, data=data, timeout=config.timeout)
    except requests.RequestException as error:
        raise ProviderError(
            Outcome(Kind.TRANSIENT, message=f"Google token endpoint unreachable ({type(error).__name__}).")
        ) from None  # the chained exception would carry the request body (code, secret)
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    if response.status_code == 200 and isinstance(payload, dict):
        return payload
    raise _token_error(response.status_code, payload if isinstance(payload, dict) else {})


def _token_error(status, payload):
    error = payload.get("error") or f"HTTP {status}"
    description = payload.get("error_description") or ""
    message = f"{error}: {description}" if description else error
    if error == "invalid_grant":
        return AuthRevoked(message)
    kind = Kind.TRANSIENT if status >= 500 or status == 429 else Kind.REJECTED
    return ProviderError(Outcome(kind, status=status, message=f"Google token endpoint: {message}"))


def _email_from_id_token(id_token):
    """The ``email`` claim of the ID token.

    The signature is not verified: the token comes straight from Google's token endpoint over
    TLS in answer to our authenticated request, which OpenID Connect Core §3.1.3.7 accepts as
    proof of origin; we only read the claims to show which account was connected.
    """
    if not id_token or id_token.count(".") != 2:
        return ""
    claims_part = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(claims_part + "=" * (-len(claims_part) % 4)))
    except ValueError:
        _logger.warning("Google returned an ID token that is not a well-formed JWT")
        return ""
    return claims.get("email", "") if isinstance(claims, dict) else ""
