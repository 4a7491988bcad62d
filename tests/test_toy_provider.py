"""A fourth provider is one folder: a toy one, discovered from a folder of the tests, gets its
settings, its https check and its consent flow from its declaration, and pushes through the
engine like the others. No file of the addon changes for it."""

import os
from datetime import datetime

import pytest

from impact_calendar_integration.sync import engine, payload, providers
from impact_calendar_integration.sync.providers.base import CREATE, DELETE, UPDATE

TOY_FOLDER = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "impact_calendar_integration", "tests", "toy_provider"
)
TOY_PACKAGE = "impact_calendar_integration.tests.toy_provider"


@pytest.fixture
def toy():
    providers.discover(TOY_PACKAGE, [TOY_FOLDER])
    yield providers.get("toy")
    providers.REGISTRY.pop("toy", None)


def snapshot(students=1, name="Pottery"):
    return payload.ClassSnapshot(
        event_ref=7, name=name, start=datetime(2031, 5, 6, 9), stop=datetime(2031, 5, 6, 10), roster_count=students,
    )


def test_discovered_from_its_folder_after_the_others(toy):
    assert [name for name, _label in providers.choices()] == ["google", "microsoft", "caldav", "toy"]
    assert toy.connect == providers.OAUTH and toy.revocation_kind() == providers.USER_REMOVES_APP
    assert [toy.setting_field(s) for s in toy.settings] == [
        "impact_calendar_toy_client_id", "impact_calendar_toy_client_secret", "impact_calendar_toy_endpoint",
    ]
    assert [toy.setting_key(s) for s in toy.settings][-1] == "impact_calendar.toy_endpoint"


def test_settings_default_once_and_an_undeclared_url_is_checked(toy):
    config = toy.config({"impact_calendar.toy_client_id": "k"}.get)
    assert (config.client_id, config.client_secret, config.endpoint) == ("k", "", "https://toy.example/api"), "the default"
    assert toy.config_problems(config) == []
    unsafe = toy.config({"impact_calendar.toy_endpoint": "http://toy.example/api"}.get)
    assert toy.config_problems(unsafe) == ["http://toy.example/api must use https (plain http only on this machine's loopback)"]
    assert ("impact_calendar_toy_endpoint" not in {toy.setting_field(s) for _p, s in providers.endpoint_settings()})


def test_consent_flow_from_the_declaration(toy):
    config = toy.config({}.get)
    url, pending = toy.start(config, "https://odoo.test/impact_calendar/oauth/toy/callback", "st", toy.scopes_for("main"))
    assert url.startswith("https://toy.example/api/consent?state=st") and pending == {"asked": ["calendar"]}
    tokens, email = toy.finish(config, pending, {"code": "ann"}, "https://odoo.test/cb")
    assert (tokens.access_token, tokens.extra, email) == ("at-ann", {"mailbox": "ann"}, "ann@toy.example")


def test_a_booking_pushes_through_the_engine_into_the_toy_store(toy):
    from impact_calendar_integration.tests.toy_provider.toy import STORE  # pylint: disable=import-outside-toplevel

    STORE.clear()
    tokens, _email = toy.finish(toy.config({}.get), {}, {"code": "ann"}, "")
    client = toy.client(toy.config({}.get), tokens)
    link = engine.LinkState()

    def push(body):
        nonlocal link
        op = engine.plan(1, link, body, lambda generation: toy.client_id("db", 7, 2, generation))
        if isinstance(op, engine.Transition):
            return None, op
        outcome = client.push([op])[op.key]
        step = engine.settle(op, outcome, link, create_sends_current_body=toy.create_sends_current_body)
        link = engine.LinkState(external_id=step.external_id, pushed_hash=step.pushed_hash, generation=step.generation)
        return op.action, step

    action, _step = push(toy.build_body(snapshot(1)))
    assert action == CREATE and list(STORE["ann"].values())[0]["title"] == "Pottery"
    assert push(toy.build_body(snapshot(1)))[0] is None, "same body: nothing sent"
    action, _step = push(toy.build_body(snapshot(2)))
    assert action == UPDATE and "2 students booked" in list(STORE["ann"].values())[0]["notes"]
    action, _step = push(None)
    assert action == DELETE and STORE["ann"] == {}
