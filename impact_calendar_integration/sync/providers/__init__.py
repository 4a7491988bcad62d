"""Provider registry: everything that differs between calendar services, one entry each.

A provider is a module in this package that builds a ``Provider`` and calls ``register``. The
Odoo layer, the demo and the tests ask ``get(name)``; no other code compares provider names.
"""

from dataclasses import MISSING, dataclass, fields

REGISTRY = {}

# What a disconnect does to the grant at the provider, for the disconnect dialog.
REVOKED = "revoked"  # the addon revokes it (``revoke``)
USER_REMOVES_APP = "user_removes_app"  # no revocation by API: the user removes the app's access
USER_DELETES_PASSWORD = "user_deletes_password"  # an app-specific password the user made


@dataclass(frozen=True)
class Provider:
    """One calendar service.

    ``settings``: the config fields an administrator sets, read from the system parameters
    ``impact_calendar.<name>_<field>``. ``start(config, redirect_uri, state)`` returns the
    consent URL and what to keep in the session until the callback (JSON); ``finish(config,
    pending, params, redirect_uri)`` returns ``(TokenSet, email)`` or raises ``ConnectError``.
    ``client_id(namespace, event_ref, user_ref, generation)`` makes a create idempotent.
    ``revoke(config, tokens)`` revokes the grant where the provider offers it.
    ``destination_scopes``: {destination: scopes to ask at consent} (``config.DEDICATED`` and
    ``config.MAIN``); ``start`` receives the destination's scopes.
    ``calendar_create_idempotent``: whether a resent ``create_calendar`` finds the calendar an
    earlier, unanswered try made (else such a try may leave an empty calendar behind).
    ``create_sends_current_body``: a retried create leaves the event with the body it sent (an
    idempotent overwrite, CalDAV's PUT), not one an earlier try made from an older version.
    ``native_sync``: (``res.users`` status method, token field) of Odoo's own sync of this
    service: a token and the status ``"sync_active"`` mean Odoo already pushes the user's events.
    ``check(config, server_url, username, password)``: for a provider without OAuth (``start``
    None), checks the credentials at once and returns ``(TokenSet, account label)`` or raises
    ``ConnectError``.
    ``revocation``: what a disconnect does to the grant (``REVOKED``, ``USER_REMOVES_APP``,
    ``USER_DELETES_PASSWORD``); ``revocation_kind()`` when it is not declared.
    ``consent_pages``: where a user removes the app's access themself (``USER_REMOVES_APP``).
    """

    name: str
    label: str
    config_class: type
    settings: tuple
    client_class: type
    build_body: object
    client_id: object
    start: object
    finish: object
    revoke: object = None
    scopes: tuple = ()
    destination_scopes: dict = None
    calendar_create_idempotent: bool = False
    create_sends_current_body: bool = False
    native_sync: tuple = (None, None)
    check: object = None
    revocation: str = None
    consent_pages: tuple = ()

    def scopes_for(self, destination):
        """The consent scopes for ``destination`` (``dedicated`` or ``main``)."""
        return tuple((self.destination_scopes or {}).get(destination) or self.scopes)

    def revocation_kind(self):
        """What a disconnect does to the grant: the declared ``revocation``, else what the
        entry offers (a ``revoke`` function; a password checked by ``check``; else consent)."""
        if self.revocation:
            return self.revocation
        if self.revoke:
            return REVOKED
        return USER_DELETES_PASSWORD if self.check else USER_REMOVES_APP

    def config(self, get_param):
        """The provider's config from ``get_param(key)`` (empty: the default)."""
        defaults = {field.name: field.default for field in fields(self.config_class) if field.default is not MISSING}
        values = {name: get_param(f"impact_calendar.{self.name}_{name}") or defaults.get(name, "") for name in self.settings}
        return self.config_class(**values)

    def client(self, config, tokens, on_tokens=None, calendar_id=None):
        """A client writing into ``calendar_id`` (None: the user's main calendar)."""
        client = self.client_class(config, tokens, on_tokens=on_tokens)
        client.calendar_id = calendar_id
        return client


def register(provider):
    REGISTRY[provider.name] = provider
    return provider


def get(name):
    """The provider called ``name``; KeyError for an unknown one."""
    return REGISTRY[name]


def choices():
    """(name, label) of every provider, for a selection field."""
    return [(provider.name, provider.label) for provider in REGISTRY.values()]


from . import google, microsoft  # noqa: E402,F401  pylint: disable=wrong-import-position
from . import caldav  # noqa: E402,F401  pylint: disable=wrong-import-position
