"""POST /helloworld with {"name": "Nic"} answers {"message": "Hello Nic"} (port 8080)."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/helloworld":
            self.send_error(404)
            return
        try:
            name = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))["name"]
        except (ValueError, KeyError, TypeError):
            self.send_error(400, "expected {\"name\": ...}")
            return
        body = json.dumps({"message": f"Hello {name}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    print(f"helloworld listening on :{port}", flush=True)
    HTTPServer(("0.0.0.0", port), Hello).serve_forever()
