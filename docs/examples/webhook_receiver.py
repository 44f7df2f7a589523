"""A receiver for `spoc notify`: verifies the Standard Webhooks signature, dedupes by webhook-id.

    pip install standardwebhooks
    SPOC_WEBHOOK_SECRET=whsec_... python webhook_receiver.py          # listens on 127.0.0.1:8080
    spoc notify --webhook http://127.0.0.1:8080/ --secret-env SPOC_WEBHOOK_SECRET
"""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

webhook = Webhook(os.environ["SPOC_WEBHOOK_SECRET"])
seen: set[str] = set()  # in production: a table with a unique key, written with the effect


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            event = webhook.verify(body, dict(self.headers))  # signature, and a timestamp under 5 minutes old
        except WebhookVerificationError:
            self.send_response(400)  # not from spoc, or replayed: spoc notify does not retry a 400
            self.end_headers()
            return
        if event["id"] not in seen:  # a re-delivery after a crash carries the same id
            seen.add(event["id"])
            change = event["data"]
            print(f"{change['customer_id']}: {change['previous_owner_id']} -> {change['owner_id']} "
                  f"({change['reason']})", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Receiver).serve_forever()
