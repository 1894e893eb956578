"""A webhook receiver that verifies every request with the official
Standard Webhooks library (pip package `standardwebhooks`).

Binds 127.0.0.1 on a free port, prints "PORT <n>" on stdout, then serves
until killed. Each POST is appended as one JSON line to --log:
{"path", "verified", "error", "payload", "body", "headers"}.

Paths: /ok answers 204 (401 when verification fails); /reject answers 400;
/flaky answers 503 twice, then 200 (also 401 when verification fails).
"""

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

LOCK = threading.Lock()
COUNTS = {}


def make_handler(secret, log_path):
    wh = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            verified, error, payload = False, None, None
            try:
                payload = wh.verify(body, headers)
                verified = True
            except Exception as e:  # verification errors and bad JSON alike
                error = "%s: %s" % (type(e).__name__, e)
            with LOCK:
                COUNTS[self.path] = COUNTS.get(self.path, 0) + 1
                n = COUNTS[self.path]
                with open(log_path, "a") as f:
                    f.write(
                        json.dumps(
                            {
                                "path": self.path,
                                "verified": verified,
                                "error": error,
                                "payload": payload,
                                "body": body.decode("utf-8", "replace"),
                                "headers": headers,
                            }
                        )
                        + "\n"
                    )
            if self.path == "/reject":
                status = 400
            elif not verified:
                status = 401
            elif self.path == "/flaky" and n <= 2:
                status = 503
            elif self.path == "/flaky":
                status = 200
            else:
                status = 204
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--secret", required=True)
    p.add_argument("--log", required=True)
    a = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(a.secret, a.log))
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
