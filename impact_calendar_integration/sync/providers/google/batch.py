"""googleapiclient's batch request, with each part written without ``email.generator``.

The library writes every part of a batch through ``MIMENonMultipart`` and a ``Generator``: about
2 ms of CPU per part, the push worker's largest item beside the requests of the people booking
(benchmarks/README.md §4h). The text is the same as the library's (a test compares them); the
rest (the outer multipart, sending, reading the answer, refreshing the token) is the library's.
"""

import urllib.parse

from googleapiclient import _auth
from googleapiclient.http import BatchHttpRequest


class PlainBatchHttpRequest(BatchHttpRequest):
    def _serialize_request(self, request):
        """The part as ``application/http`` text: request line, headers, a blank line, body."""
        parsed = urllib.parse.urlparse(request.uri)
        target = urllib.parse.urlunparse(("", "", parsed.path, parsed.params, parsed.query, ""))
        headers = request.headers.copy()
        if request.http is not None:
            credentials = _auth.get_credentials_from_http(request.http)
            if credentials is not None:
                _auth.apply_credentials(credentials, headers)
        content_type = headers.pop("content-type", "application/json")
        lines = [f"{request.method} {target} HTTP/1.1", f"Content-Type: {content_type}", "MIME-Version: 1.0"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        lines.append(f"Host: {parsed.netloc}")
        if request.body is not None:
            lines.append(f"content-length: {len(request.body)}")
        return "\n".join(lines) + "\n\n" + (request.body or "")
