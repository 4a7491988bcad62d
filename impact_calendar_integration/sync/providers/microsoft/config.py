"""Microsoft's settings and consent scopes."""

from dataclasses import dataclass

from ...config import DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES, TOTAL_DEADLINE

MICROSOFT_SCOPES = ("Calendars.ReadWrite", "User.Read")  # MSAL adds openid profile offline_access


@dataclass(frozen=True)
class MicrosoftConfig:
    client_id: str
    client_secret: str
    tenant: str = "common"
    authority_host: str = "https://login.microsoftonline.com"
    graph_endpoint: str = "https://graph.microsoft.com/v1.0"  # no trailing "/"
    timeout: float = DEFAULT_TIMEOUT  # per read
    deadline: float = TOTAL_DEADLINE  # per request, whatever the server's pace
    max_response_bytes: int = MAX_RESPONSE_BYTES

    @property
    def authority(self):
        return f"{self.authority_host.rstrip('/')}/{self.tenant}"

    @property
    def is_microsoft_cloud(self):
        """MSAL's instance discovery only knows Microsoft's own hosts; skip it elsewhere."""
        host = self.authority_host.split("://", 1)[-1].split("/", 1)[0].lower()
        return host in ("login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn")
