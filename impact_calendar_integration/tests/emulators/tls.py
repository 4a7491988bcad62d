"""A throwaway certificate authority for the loopback emulators.

MSAL only accepts ``https`` authorities and oauthlib refuses plain-http token URLs, so the
emulators speak TLS with a certificate for ``127.0.0.1`` and ``localhost`` issued by a test
CA made with ``trustme``. All emulators share one CA (module-level singleton).

On these machines ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` are set, and requests lets
them override ``verify=``. :func:`trusted` therefore points both variables at a bundle
that holds the system roots *and* the test CA for as long as a test needs it.
"""

import atexit
import contextlib
import os
import ssl
import tempfile
import threading

import trustme

HOSTS = ("127.0.0.1", "localhost")
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


class ThrowawayCA:
    """The CA, its server certificate and a CA bundle file that trusts it."""

    def __init__(self):
        self.ca = trustme.CA()
        self.server_cert = self.ca.issue_cert(*HOSTS)
        self.ca_pem = self.ca.cert_pem.bytes()
        self.bundle_path = self._write_bundle()
        atexit.register(self._remove_bundle)

    def server_context(self):
        """A fresh server-side SSLContext presenting the loopback certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context

    def client_context(self):
        """An SSLContext that trusts only the test CA (for non-requests clients)."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def _write_bundle(self):
        handle, path = tempfile.mkstemp(prefix="impact-test-ca-", suffix=".pem")
        with os.fdopen(handle, "wb") as bundle:
            system = _system_bundle()
            if system:
                with open(system, "rb") as roots:
                    bundle.write(roots.read().rstrip(b"\n") + b"\n")
            bundle.write(self.ca_pem)
        return path

    def _remove_bundle(self):
        with contextlib.suppress(OSError):
            os.unlink(self.bundle_path)


def _system_bundle():
    """The roots the process would trust without us, so other HTTPS keeps working."""
    try:
        import certifi
    except ImportError:
        certifi = None
    for candidate in (certifi.where() if certifi else None, SYSTEM_BUNDLE):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


_ca = None
_ca_lock = threading.Lock()


def shared_ca():
    """The shared CA, created on first use."""
    global _ca
    with _ca_lock:
        if _ca is None:
            _ca = ThrowawayCA()
        return _ca


def server_context():
    return shared_ca().server_context()


def ca_bundle():
    """Path of the bundle (system roots + test CA)."""
    return shared_ca().bundle_path


@contextlib.contextmanager
def trusted():
    """Let ``requests`` (and anything honouring the CA bundle variables) trust the test CA."""
    path = ca_bundle()
    saved = {name: os.environ.get(name) for name in BUNDLE_VARIABLES}
    for name in BUNDLE_VARIABLES:
        os.environ[name] = path
    try:
        yield path
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
