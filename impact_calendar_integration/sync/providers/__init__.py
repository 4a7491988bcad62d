"""Provider registry: everything that differs between calendar services, one entry each.

A provider is a package in this folder (``google/``, ``microsoft/``, ``caldav/``…) that builds a
``Provider`` and calls ``register``; ``discover`` imports every such package, so a new service
is a new folder and nothing else. The Odoo layer, the demo and the tests ask ``get(name)`` or
walk ``entries()``; no other code compares provider names.
"""

import importlib
import pkgutil
from dataclasses import MISSING, dataclass, fields

from ..config import endpoint_problem

REGISTRY = {}

# How a user connects: a consent page (``start``/``finish``) or a form whose credentials are
# checked at once (``check``).
OAUTH = "oauth"
FORM = "form"

# What a disconnect does to the grant at the provider, for the disconnect dialog.
REVOKED = "revoked"  # the addon revokes it (``revoke``)
USER_REMOVES_APP = "user_removes_app"  # no revocation by API: the user removes the app's access
USER_DELETES_PASSWORD = "user_deletes_password"  # an app-specific password the user made

SETTING_PREFIX = "impact_calendar"


@dataclass(frozen=True)
class Setting:
    """One value of a provider's config that an administrator sets in Settings.

    Stored in the system parameter ``impact_calendar.<provider>_<name>``; its default is the
    default of the config class's field of the same name (declared once, there).
    ``kind``: ``char`` or ``boolean``. ``endpoint``: the value is a URL that receives tokens
    (https only). ``secret``: shown as a password. ``advanced``: shown with the endpoints, in
    debug mode only. ``placeholder``, ``help``: for the Settings form.
    """

    name: str
    label: str
    kind: str = "char"
    endpoint: bool = False
    secret: bool = False
    advanced: bool = False
    placeholder: str = ""
    help: str = ""


@dataclass(frozen=True)
class Provider:
    """One calendar service, with its capabilities declared (never guessed from its functions).

    ``settings``: the ``Setting`` values an administrator sets. ``connect``: ``OAUTH`` (then
    ``start(config, redirect_uri, state, scopes)`` returns the consent URL and what to keep in
    the session until the callback (JSON); ``finish(config, pending, params, redirect_uri)``
    returns ``(TokenSet, email)`` or raises ``ConnectError``) or ``FORM`` (then
    ``check(config, server_url, username, password)`` checks the credentials at once and returns
    ``(TokenSet, account label)`` or raises ``ConnectError``; the Odoo side brings the form).
    ``client_id(namespace, event_ref, user_ref, generation)`` makes a create idempotent.
    ``revoke(config, tokens)`` revokes the grant where the provider offers it.
    ``dedicated_calendar``: the user may choose between a calendar the addon creates and their
    main one (``create_calendar``/``get_calendar``/``delete_calendar`` of the client); else the
    classes go where the client was set up at connect. ``main_calendar``: False when the client
    has no main calendar to push into (every account then gets the dedicated one).
    ``connect_calendar(tokens)``: the calendar an older connect made and kept in the tokens, or
    None; ``impact.calendar.account._adopt_connect_calendars`` makes it the dedicated one.
    ``destination_scopes``: {destination: scopes to ask at consent} (``config.DEDICATED`` and
    ``config.MAIN``); ``start`` receives the destination's scopes.
    ``calendar_create_idempotent``: whether a resent ``create_calendar`` finds the calendar an
    earlier, unanswered try made (else such a try may leave an empty calendar behind).
    ``create_sends_current_body``: a retried create leaves the event with the body it sent (an
    idempotent overwrite, CalDAV's PUT), not one an earlier try made from an older version.
    ``native_sync``: (``res.users`` status method, token field) of Odoo's own sync of this
    service: a token and the status ``"sync_active"`` mean Odoo already pushes the user's events.
    ``revocation``: what a disconnect does to the grant (``REVOKED``, ``USER_REMOVES_APP``,
    ``USER_DELETES_PASSWORD``). ``consent_pages``: where a user removes the app's access
    themself (``USER_REMOVES_APP``). ``redirect_uri_label``: the Settings label of the OAuth
    redirect URI. ``sequence``: the order of the entries in every list.
    """

    name: str
    label: str
    config_class: type
    settings: tuple
    client_class: type
    build_body: object
    client_id: object
    connect: str
    revocation: str
    start: object = None
    finish: object = None
    check: object = None
    revoke: object = None
    scopes: tuple = ()
    destination_scopes: dict = None
    dedicated_calendar: bool = False
    main_calendar: bool = True
    connect_calendar: object = None
    calendar_create_idempotent: bool = False
    create_sends_current_body: bool = False
    native_sync: tuple = (None, None)
    consent_pages: tuple = ()
    redirect_uri_label: str = None
    sequence: int = 100

    def scopes_for(self, destination):
        """The consent scopes for ``destination`` (``dedicated`` or ``main``)."""
        return tuple((self.destination_scopes or {}).get(destination) or self.scopes)

    def revocation_kind(self):
        """What a disconnect does to the grant."""
        return self.revocation

    def setting_key(self, setting):
        """The system parameter that stores ``setting`` (a ``Setting``)."""
        return f"{SETTING_PREFIX}.{self.name}_{setting.name}"

    def setting_field(self, setting):
        """The ``res.config.settings`` field that shows ``setting``."""
        return f"{SETTING_PREFIX}_{self.name}_{setting.name}"

    def setting_default(self, setting):
        """``setting``'s default: the config class's (None when it has none)."""
        for field in fields(self.config_class):
            if field.name == setting.name and field.default is not MISSING:
                return field.default
        return None

    def config(self, get_param):
        """The provider's config from ``get_param(key)`` (empty: the default)."""
        values = {}
        for setting in self.settings:
            value = get_param(self.setting_key(setting)) or self.setting_default(setting)
            if setting.kind == "boolean":
                value = str(value or "").lower() in ("1", "true")
            values[setting.name] = value if value is not None else ""
        return self.config_class(**values)

    def config_problems(self, config):
        """Every endpoint of ``config`` that may not receive tokens: the declared endpoints, and
        any other setting that holds a URL (an endpoint nobody declared is checked all the same)."""
        declared = {setting.name for setting in self.settings if setting.endpoint}
        admin_set = {setting.name for setting in self.settings}
        return [
            problem
            for field in fields(config)
            if field.name in admin_set
            and (value := getattr(config, field.name))
            and (field.name in declared or (isinstance(value, str) and "://" in value))
            and (problem := endpoint_problem(value))
        ]

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


def entries():
    """Every provider, in their declared order."""
    return sorted(REGISTRY.values(), key=lambda provider: (provider.sequence, provider.name))


def choices():
    """(name, label) of every provider, for a selection field."""
    return [(provider.name, provider.label) for provider in entries()]


def endpoint_settings():
    """(provider, setting) of every declared endpoint, for the Settings form's https check."""
    return [(provider, setting) for provider in entries() for setting in provider.settings if setting.endpoint]


def discover(package=__name__, path=None):
    """Import every provider package of ``package`` (sorted by name: a stable order) and
    register its ``PROVIDER`` (again, if it was imported before and unregistered since)."""
    path = __path__ if path is None else path
    for info in sorted(pkgutil.iter_modules(path), key=lambda info: info.name):
        if info.ispkg:
            module = importlib.import_module(f"{package}.{info.name}")
            if isinstance(getattr(module, "PROVIDER", None), Provider):
                register(module.PROVIDER)


discover()
