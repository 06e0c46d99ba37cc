"""A webhook receiver for a lab namespace, standing in for on-call's paging bridge:
`python3 -c WEBHOOK_RECEIVER OUT HOST [PORT]` appends each POST body to OUT, one per line."""
from __future__ import annotations

import json
import os

WEBHOOK_RECEIVER = """
import http.server, sys
out = open(sys.argv[1], "ab", buffering=0)
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        out.write(self.rfile.read(int(self.headers["Content-Length"])) + b"\\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 9095), Hook).serve_forever()
"""


def webhook_posts(path) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
