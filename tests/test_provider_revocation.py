"""What a disconnect does to each provider's grant, as the registry declares it (the disconnect
dialog words it from this): no provider may claim a revocation it cannot do."""

from impact_calendar_integration.sync import providers


def test_every_provider_declares_what_a_disconnect_revokes():
    kinds = {providers.REVOKED, providers.USER_REMOVES_APP, providers.USER_DELETES_PASSWORD}
    for name, entry in providers.REGISTRY.items():
        kind = entry.revocation_kind()
        assert kind in kinds, name
        # Revoked by the addon only with a revoke function; the user removes the app at a
        # page the dialog can name.
        assert (kind == providers.REVOKED) == bool(entry.revoke), name
        if kind == providers.USER_REMOVES_APP:
            assert entry.consent_pages, name


def test_known_providers():
    assert providers.get("google").revocation_kind() == providers.REVOKED
    assert providers.get("microsoft").revocation_kind() == providers.USER_REMOVES_APP
    assert providers.get("caldav").revocation_kind() == providers.USER_DELETES_PASSWORD
