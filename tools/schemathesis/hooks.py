"""schemathesis hooks for the CDSS reference server (loaded by examples/reference-server/test/schemathesis.test.ts).

The AI webhook (`POST /api/webhooks/ai`, operation `aiWebhook`) answers 401 to anything not signed with the webhook
secret, so without a signature its bodies would never be checked. This signs each request to it as an AI worker does
(`CDSS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, see @cdss/ai-jobs webhooks.ts),
over the exact bytes sent, with the secret the test server uses (CDSS_WEBHOOK_SECRET). As a registered auth provider
it is explicit auth to schemathesis: its `ignored_auth` check still sends the request unsigned and wrongly signed and
expects 401, and negative cases that drop the header are sent without it.
"""

import hashlib
import hmac
import os
import time

import requests
import schemathesis


class WebhookSignature(requests.auth.AuthBase):
    """Signs the prepared request's body (requests applies auth after it has serialised the body)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        timestamp = int(time.time())
        digest = hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        request.headers["CDSS-Signature"] = f"t={timestamp},v1={digest}"
        return request


schemathesis.auth.set_from_requests(WebhookSignature(os.environ["CDSS_WEBHOOK_SECRET"])).apply_to(
    operation_id="aiWebhook"
)
