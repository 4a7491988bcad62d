"""A real CalDAV server for the tests: Radicale (PyPI ``radicale``) on 127.0.0.1, with its own
storage folder and htpasswd users, behind a loopback fault layer.

The fault layer (``LoopbackServer``) forwards every request to Radicale and logs it; injected
faults answer instead (429 with Retry-After, 503), or drop the connection after Radicale applied
the request (``after_handling=True, drop=True``): the crash-after-commit case.

    with RadicaleServer(users={"ann": "app-pass"}) as dav:
        dav.base_url                      # what the client talks to (through the fault layer)
        dav.inject(r"\\.ics$", method="PUT", status=429, headers={"Retry-After": "7"})
        dav.events("ann", "ann/impact-classes/")   # {href: ics text}, by a CalDAV REPORT
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from xml.etree import ElementTree

import requests

from .common import LoopbackServer, Response

DAV_VERBS = ("PROPFIND", "PROPPATCH", "MKCALENDAR", "MKCOL", "REPORT", "OPTIONS", "HEAD", "MOVE")
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Depth", "If-Match", "If-None-Match", "Destination", "Overwrite")
RETURNED_HEADERS = ("ETag", "Content-Type", "Location", "Retry-After", "DAV", "Allow", "WWW-Authenticate")

CALENDAR_QUERY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<c:calendar-query xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav">'
    b"<d:prop><d:getetag/><c:calendar-data/></d:prop>"
    b'<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"/></c:comp-filter></c:filter>'
    b"</c:calendar-query>"
)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RadicaleServer(LoopbackServer):
    """Radicale in a subprocess of this Python, and the fault layer in front of it."""

    def __init__(self, users=None):
        super().__init__()
        self.users = dict(users or {})
        self.folder = None
        self.process = None
        self.radicale_url = None
        self._upstream = requests.Session()

    # -- lifecycle -------------------------------------------------------------------
    def start(self):
        self.folder = tempfile.mkdtemp(prefix="impact-radicale-")
        self._write_users()
        port = _free_port()
        self.radicale_url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(  # noqa: S603  (our own interpreter and arguments)
            [
                sys.executable, "-m", "radicale", "--config", "",
                "--server-hosts", f"127.0.0.1:{port}",
                "--storage-filesystem-folder", os.path.join(self.folder, "collections"),
                "--auth-type", "htpasswd",
                "--auth-htpasswd-filename", os.path.join(self.folder, "users"),
                "--auth-htpasswd-encryption", "plain",
                "--rights-type", "owner_only",
                "--logging-level", "warning",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if self.process.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError("Radicale did not start") from None
                time.sleep(0.05)
        super().start()
        handler = self._httpd.RequestHandlerClass
        for verb in DAV_VERBS:
            setattr(handler, f"do_{verb}", handler.do_GET)
        return self

    def stop(self):
        result = super().stop()
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
        return result

    def _write_users(self):
        with open(os.path.join(self.folder, "users"), "w", encoding="utf-8") as handle:
            handle.writelines(f"{name}:{password}\n" for name, password in self.users.items())

    def add_user(self, name, password):
        self.users[name] = password
        self._write_users()

    # -- the fault layer: everything else is Radicale's own answer -------------------------
    def handle(self, req):
        path = req.handler.path
        headers = {name: req.headers[name] for name in FORWARDED_HEADERS if req.headers.get(name)}
        upstream = self._upstream.request(
            req.method, self.radicale_url + path, data=req.body or None, headers=headers,
            allow_redirects=False, timeout=30,
        )
        returned = {name: upstream.headers[name] for name in RETURNED_HEADERS if name in upstream.headers}
        return Response(upstream.status_code, raw=upstream.content, headers=returned)

    # -- looking inside, as a CalDAV client would ------------------------------------------
    def events(self, user, calendar_path):
        """``{href: calendar-data}`` of every VEVENT in ``calendar_path`` (a REPORT straight to
        Radicale, not logged, never faulted)."""
        response = self._upstream.request(
            "REPORT", f"{self.radicale_url}/{calendar_path.strip('/')}/", data=CALENDAR_QUERY,
            headers={"Depth": "1", "Content-Type": "application/xml"}, auth=(user, self.users[user]), timeout=30,
        )
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        root = ElementTree.fromstring(response.content)
        found = {}
        for item in root.iter("{DAV:}response"):
            href = item.findtext("{DAV:}href")
            data = item.findtext(".//{urn:ietf:params:xml:ns:caldav}calendar-data")
            if href and data:
                found[href] = data
        return found

    def calendars(self, user):
        """Display names of ``user``'s calendars, by href."""
        response = self._upstream.request(
            "PROPFIND", f"{self.radicale_url}/{user}/", headers={"Depth": "1", "Content-Type": "application/xml"},
            data=b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:displayname/><d:resourcetype/></d:prop></d:propfind>',
            auth=(user, self.users[user]), timeout=30,
        )
        response.raise_for_status()
        root = ElementTree.fromstring(response.content)
        return {
            item.findtext("{DAV:}href"): item.findtext(".//{DAV:}displayname")
            for item in root.iter("{DAV:}response")
            if item.find(".//{urn:ietf:params:xml:ns:caldav}calendar") is not None
        }

    def delete_calendar(self, user, calendar_path):
        """The user deletes our calendar in their app."""
        self._upstream.delete(f"{self.radicale_url}/{calendar_path.strip('/')}/", auth=(user, self.users[user]), timeout=30)
