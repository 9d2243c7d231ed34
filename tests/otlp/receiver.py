"""An OTLP/HTTP receiver for the telemetry tests: accepts protobuf export requests on
/v1/traces, /v1/metrics and /v1/logs, decodes them with the official OpenTelemetry protobuf
definitions (the `opentelemetry-proto` package) and appends each one to a JSON-lines file as
{"signal": "traces"|"metrics"|"logs", "request": <the request as protobuf JSON>}.

Usage: receiver.py OUT_FILE PORT_FILE. Listens on 127.0.0.1 on a free port, writes the port to
PORT_FILE once it accepts connections, runs until killed.
"""

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

SIGNALS = {
    "/v1/traces": (
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "/v1/metrics": (
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
    "/v1/logs": (
        "logs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
}

LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    out_path = ""

    def do_POST(self):
        signal = SIGNALS.get(self.path)
        if signal is None:
            self.send_error(404)
            return
        name, request_type, response_type = signal
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_error(415, "only application/x-protobuf")
            return
        request = request_type()
        try:
            request.ParseFromString(body)
        except Exception as e:  # a malformed body is the plugin's bug: answer 400, record it
            self.send_error(400, str(e))
            record = {"signal": name, "error": str(e)}
        else:
            record = {"signal": name, "request": MessageToDict(request)}
            reply = response_type().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
        with LOCK, open(self.out_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def log_message(self, format, *args):
        pass


def main():
    out_path, port_path = sys.argv[1], sys.argv[2]
    Handler.out_path = out_path
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_path + ".tmp", "w", encoding="utf-8") as f:
        f.write(str(server.server_address[1]))
    import os

    os.rename(port_path + ".tmp", port_path)
    server.serve_forever()


if __name__ == "__main__":
    main()
