# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""OAuth connect flow: /impact_calendar/oauth/<provider>/start and /callback.

The ``state`` is signed with the database secret and bound to the user, the session and the
provider; it is single use (its nonce is popped from the session) and short-lived. Every check
runs before the code is sent to the provider's token endpoint. Providers answer in query mode
(a top-level GET): Odoo 18's session cookie has no SameSite attribute, so browsers treat it as
Lax and a cross-site form_post would arrive without the session.
"""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time

from werkzeug.exceptions import Forbidden, NotFound

from odoo import http
from odoo.exceptions import UserError
from odoo.http import request
from odoo.tools.misc import hmac as odoo_hmac

from ..sync import providers
from ..sync.outcomes import ConnectError

_logger = logging.getLogger(__name__)

GROUP = "impact_calendar_integration.group_calendar_integration"
STATE_TTL = 600  # seconds between Connect and the provider's redirect back
SESSION_KEY = "impact_calendar_oauth"
HMAC_SCOPE = "impact_calendar_integration.oauth_state"
PREFERENCES_URL = "/odoo/external-calendar"


class StateError(Exception):
    """The callback's state is forged, expired, replayed, or not this user's."""


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _session_binding():
    # The sid itself never leaves the server; only a digest of it goes into the signed state.
    return hashlib.sha256(request.session.sid.encode()).hexdigest()[:32]


def sign_state(env, provider, uid, nonce, expires):
    claims = {"p": provider, "u": uid, "s": _session_binding(), "n": nonce, "e": int(expires)}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{odoo_hmac(env(su=True), HMAC_SCOPE, body)}"


def check_state(env, state, provider):
    """Return the nonce of a valid state for this user, session and provider, else raise."""
    try:
        body, signature = (state or "").rsplit(".", 1)
    except ValueError as exc:
        raise StateError("malformed state") from exc
    expected = odoo_hmac(env(su=True), HMAC_SCOPE, body)
    # Bytes on both sides: a non-ASCII state is a bad signature, not a TypeError.
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass")):
        raise StateError("bad signature")
    try:
        claims = json.loads(_unb64(body))
    except ValueError as exc:
        raise StateError("unreadable state") from exc
    if claims.get("p") != provider:
        raise StateError("state issued for another provider")
    if claims.get("u") != env.uid:
        raise StateError("state issued for another user")
    if claims.get("s") != _session_binding():
        raise StateError("state issued for another session")
    if claims.get("e", 0) < time.time():
        raise StateError("state expired")
    return claims["n"]


class ImpactCalendarOAuth(http.Controller):
    def _check_access(self, provider):
        if provider not in providers.REGISTRY or providers.get(provider).connect != providers.OAUTH:
            raise NotFound()
        if not request.env.user.has_group(GROUP):
            raise Forbidden(request.env._("You are not allowed to connect an external calendar."))

    def _back_to_preferences(self, notice=None):
        if notice:
            request.env.user._impact_calendar_set_notice(notice)
        return request.redirect(PREFERENCES_URL, code=303, local=True)

    @http.route("/impact_calendar/oauth/<string:provider>/start", type="http", auth="user", methods=["GET"])
    def oauth_start(self, provider, destination=None, **kwargs):
        self._check_access(provider)
        # A link on another site must not start a connection for the logged-in user.
        if request.httprequest.headers.get("Sec-Fetch-Site") == "cross-site":
            raise Forbidden(request.env._("A calendar connection starts from your Preferences only."))
        accounts = request.env["impact.calendar.account"]
        try:
            accounts._check_can_connect(request.env.user, provider)
            config = accounts._provider_config(provider)
        except UserError as exc:
            return self._back_to_preferences(exc.args[0])
        nonce = secrets.token_urlsafe(16)
        state = sign_state(request.env, provider, request.env.uid, nonce, time.time() + STATE_TTL)
        redirect_uri = accounts._redirect_uri(provider)
        # The consent asks only what the destination needs (an admin may force one).
        destination = accounts._choose_destination(destination)
        entry = providers.get(provider)
        try:
            url, pending = entry.start(config, redirect_uri, state, entry.scopes_for(destination))
        except ConnectError as exc:
            return self._back_to_preferences(request.env._("Connection failed: %(reason)s", reason=str(exc)))
        pending.update(provider=provider, destination=destination, expires=time.time() + STATE_TTL)
        flows = {
            key: value
            for key, value in request.session.get(SESSION_KEY, {}).items()
            if value.get("expires", 0) > time.time()
        }
        flows[nonce] = pending
        request.session[SESSION_KEY] = flows
        return request.redirect(url, code=303, local=False)

    @http.route("/impact_calendar/oauth/<string:provider>/callback", type="http", auth="user", methods=["GET"])
    def oauth_callback(self, provider, state=None, code=None, error=None, **kwargs):
        self._check_access(provider)
        try:
            nonce = check_state(request.env, state, provider)
        except StateError as exc:
            _logger.warning("Refused calendar OAuth callback for user %s: %s", request.env.uid, exc)
            return request.make_response(
                request.env._("This calendar connection link is invalid, expired or already used. Start again from Preferences."),
                headers=[("Content-Type", "text/plain; charset=utf-8")],
                status=400,
            )
        flows = dict(request.session.get(SESSION_KEY, {}))
        pending = flows.pop(nonce, None)
        request.session[SESSION_KEY] = flows  # single use, whatever happens next
        if not pending or pending.get("provider") != provider:
            _logger.warning("Refused replayed calendar OAuth callback for user %s", request.env.uid)
            return request.make_response(
                request.env._("This calendar connection link was already used. Start again from Preferences."),
                headers=[("Content-Type", "text/plain; charset=utf-8")],
                status=400,
            )
        if error:
            if error == "access_denied":
                return self._back_to_preferences(request.env._("Connection cancelled: the calendar access was not granted."))
            return self._back_to_preferences(
                request.env._("The provider refused the connection: %(error)s", error=kwargs.get("error_description") or error)
            )
        accounts = request.env["impact.calendar.account"]
        try:
            config = accounts._provider_config(provider)
            tokens, email = providers.get(provider).finish(
                config, pending, dict(kwargs, state=state, code=code), accounts._redirect_uri(provider)
            )
            accounts._connect(request.env.user, provider, tokens, email, pending.get("destination"))
        except (ConnectError, UserError) as exc:
            _logger.info("Calendar OAuth for user %s failed: %s", request.env.uid, exc)
            return self._back_to_preferences(request.env._("Connection failed: %(reason)s", reason=str(exc)))
        return self._back_to_preferences()
