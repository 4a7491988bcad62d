"""Loopback emulators of Google Calendar, Microsoft Graph and both OAuth servers.

Importable by the repository's pytest suite and by the addon's Odoo tests (which put this
folder's parent on ``sys.path``). They bind only to 127.0.0.1.
"""
