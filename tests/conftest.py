"""Fixtures shared by the test modules: the Google and Microsoft emulators."""

import pytest
from impact_calendar_integration.tests.emulators import tls
from impact_calendar_integration.tests.emulators.google import GoogleEmulator
from impact_calendar_integration.tests.emulators.microsoft import MicrosoftEmulator

GOOGLE_USER = "teacher@example.com"


@pytest.fixture(scope="module")
def google_server():
    """One emulator per test module: starting and stopping one costs more than resetting it."""
    with GoogleEmulator() as emulator:
        yield emulator


@pytest.fixture
def google(google_server):
    """The module's Google emulator, emptied, with one user."""
    google_server.reset()
    google_server.add_user(GOOGLE_USER)
    return google_server


@pytest.fixture
def emu():
    """A fresh Microsoft emulator, its throwaway TLS CA trusted while the test runs."""
    with tls.trusted(), MicrosoftEmulator() as server:
        yield server
