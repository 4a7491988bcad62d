"""A toy provider, complete in one folder: its config and settings, its (fake) consent flow,
its id scheme and body, its client pushing into an in-memory store. No Odoo import."""

from dataclasses import dataclass

from ....sync import payload
from ....sync.outcomes import ConnectError, Kind, Outcome
from ....sync.providers import OAUTH, USER_REMOVES_APP, Provider, Setting, register
from ....sync.providers.base import CREATE, DELETE, UPDATE, ProviderClient
from ....sync.tokens import TokenSet

#: {access token: {event id: body}}: what each toy account's calendar holds
STORE = {}


@dataclass(frozen=True)
class ToyConfig:
    client_id: str
    client_secret: str
    # Not declared an endpoint on purpose: a setting holding a URL is checked all the same.
    endpoint: str = "https://toy.example/api"


class ToyClient(ProviderClient):
    batch_size = 2

    def __init__(self, config, tokens, on_tokens=None):
        self.config = config
        self.events = STORE.setdefault(tokens.extra["mailbox"], {})

    def _push_chunk(self, chunk):
        return {op.key: self._push_one(op) for op in chunk}

    def _push_one(self, op):
        if op.action == CREATE:
            self.events[op.client_id] = op.body
            return Outcome(Kind.DONE, external_id=op.client_id)
        if op.external_id not in self.events:
            return Outcome(Kind.GONE, status=404)
        if op.action == UPDATE:
            self.events[op.external_id] = op.body
            return Outcome(Kind.DONE, external_id=op.external_id)
        if op.action == DELETE:
            del self.events[op.external_id]
            return Outcome(Kind.DONE)
        return Outcome(Kind.REJECTED, message=f"unknown action {op.action}")


def build_body(snapshot):
    start, stop = payload.check_times(snapshot)
    return {"title": snapshot.name, "start": start.isoformat(), "stop": stop.isoformat(),
            "notes": payload.description(snapshot)}


def client_id(namespace, event_ref, user_ref, generation):
    return f"toy-{payload.body_hash([namespace, event_ref, user_ref, generation])[:16]}"


def start(config, redirect_uri, state, scopes=()):
    return f"{config.endpoint}/consent?state={state}&redirect_uri={redirect_uri}", {"asked": list(scopes)}


def finish(config, pending, params, redirect_uri):
    if not params.get("code"):
        raise ConnectError("The toy service said no.")
    # What only this provider keeps goes into ``extra``: TokenSet needs no new field for it.
    return TokenSet(access_token=f"at-{params['code']}", extra={"mailbox": params["code"]}), f"{params['code']}@toy.example"


PROVIDER = register(Provider(
    name="toy",
    label="Toy Calendar",
    sequence=90,
    config_class=ToyConfig,
    settings=(
        Setting("client_id", "Toy client ID"),
        Setting("client_secret", "Toy client secret", secret=True),
        Setting("endpoint", "Toy endpoint", advanced=True),
    ),
    client_class=ToyClient,
    build_body=build_body,
    client_id=client_id,
    connect=OAUTH,
    start=start,
    finish=finish,
    revocation=USER_REMOVES_APP,
    scopes=("calendar",),
))
