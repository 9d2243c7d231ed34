"""A CloudQuery destination plugin (protocol v3) for the project's end-to-end tests.

The CLI starts it as `cq-dest-test serve --log-level L --log-format json --network unix --address
/tmp/cq-XXXX.sock [--no-sentry] ...`. It records every Write message it receives and applies
them to a state (see cqdest_store.py for the files and cqdest_values.py for the canonical JSON).

Spec (the destination's `spec:` in the CLI config):
  dir       required; where the files go (created; relative to the CLI's working directory)
  delay_ms  optional, default 0; sleep before handling each Write message (a slow destination)
  state     optional, default true; false skips the applied state (big syncs, benchmarks)
"""

import os
import sys

# This directory holds inspect.py, which would shadow the standard library's `inspect` (imported
# by grpc and pyarrow); look here only after the standard library.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

import json  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402

import grpc  # noqa: E402
import pyarrow as pa  # noqa: E402
from cloudquery.discovery_v1 import discovery_pb2, discovery_pb2_grpc  # noqa: E402
from cloudquery.plugin_v3 import plugin_pb2, plugin_pb2_grpc  # noqa: E402

import cqdest_store  # noqa: E402
import cqdest_values as cv  # noqa: E402

NAME = "test"
VERSION = "v1.0.0"
MAX_MSG = 200 << 20
LEVELS = {"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4}


class Logger:
    """zerolog-style JSON lines on stdout (or plain text with --log-format text)."""

    def __init__(self, level="info", fmt="json"):
        self.level = LEVELS.get(level, 2)
        self.fmt = fmt
        self.lock = threading.Lock()

    def log(self, level, message, **fields):
        if LEVELS[level] < self.level:
            return
        if self.fmt == "json":
            rec = {"level": level, "module": "test-destination", "message": message}
            rec.update(fields)
            line = json.dumps(rec, default=str)[:4000]
        else:
            extra = " ".join("%s=%s" % kv for kv in fields.items())
            line = "%s %s %s" % (level.upper()[:3], message, extra)
        with self.lock:
            try:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass

    def debug(self, msg, **kw):
        self.log("debug", msg, **kw)

    def info(self, msg, **kw):
        self.log("info", msg, **kw)

    def warn(self, msg, **kw):
        self.log("warn", msg, **kw)

    def error(self, msg, **kw):
        self.log("error", msg, **kw)


def parse_args(argv):
    """Tolerant `serve` flag parsing: unknown flags ignored, `--flag value` and `--flag=value`."""
    opts = {
        "network": "tcp",
        "address": "localhost:7777",
        "log-level": "info",
        "log-format": "text",
    }
    bare = {"no-sentry", "otel-endpoint-insecure"}
    args = list(argv)
    if args and args[0] == "serve":
        args = args[1:]
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--"):
            continue
        key, eq, value = arg[2:].partition("=")
        if not eq and key not in bare and i < len(args) and not args[i].startswith("--"):
            value = args[i]
            i += 1
        opts[key] = value
    return opts


def decode_predicate_values(record_bytes):
    """The values of a predicate record (Arrow IPC stream) as canonical JSON + the column type."""
    reader = pa.ipc.open_stream(record_bytes)
    batches = list(reader)
    if not batches:
        return [], None
    field = batches[0].schema.field(0)
    values = []
    for b in batches:
        values.extend(cv.column_values(field, b.column(0)))
    return values, cv.type_name(field)


class Destination(plugin_pb2_grpc.PluginServicer):
    def __init__(self, log):
        self.log = log
        self.store = None
        self.delay = 0.0
        self.lock = threading.Lock()

    # -- unary RPCs --------------------------------------------------------------------------

    def GetName(self, request, context):
        return plugin_pb2.GetName.Response(name=NAME)

    def GetVersion(self, request, context):
        return plugin_pb2.GetVersion.Response(version=VERSION)

    def GetSpecSchema(self, request, context):
        return plugin_pb2.GetSpecSchema.Response()

    def TestConnection(self, request, context):
        try:
            parse_spec(request.spec)
        except ValueError as e:
            return plugin_pb2.TestConnection.Response(
                success=False, failure_code="INVALID_SPEC", failure_description=str(e)
            )
        return plugin_pb2.TestConnection.Response(success=True)

    def Init(self, request, context):
        try:
            spec = parse_spec(request.spec)
            with self.lock:
                if self.store is None:
                    self.store = cqdest_store.Store(spec["dir"], keep_state=spec["state"])
                self.delay = spec["delay_ms"] / 1000.0
        except (ValueError, OSError) as e:
            self.log.error("init failed", error=str(e))
            context.abort(grpc.StatusCode.INTERNAL, "failed to init plugin: %s" % e)
        self.store.event("init", invocation_id=request.invocation_id, pid=os.getpid())
        self.log.info("initialized", dir=self.store.dir, delay_ms=spec["delay_ms"])
        return plugin_pb2.Init.Response()

    def Close(self, request, context):
        if self.store is not None:
            self.store.event("close")
            self.store.close_files()
        self.log.info("closed")
        return plugin_pb2.Close.Response()

    # -- Read (the state backend's calls) ----------------------------------------------------

    def Read(self, request, context):
        store = self.store
        if store is None:
            context.abort(grpc.StatusCode.INTERNAL, "plugin not initialized")
        try:
            schema = pa.ipc.open_stream(request.table).schema
        except Exception as e:  # noqa: BLE001 - undecodable request
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "read: bad table schema: %r" % e)
        count = 0
        for batch in store.read_table(schema):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, schema) as writer:
                writer.write_batch(batch)
            count += batch.num_rows
            yield plugin_pb2.Read.Response(record=sink.getvalue().to_pybytes())
        self.log.info("read", table=cqdest_store.schema_table_name(schema), rows=count)

    # -- Write -------------------------------------------------------------------------------

    def Write(self, request_iterator, context):
        store = self.store
        if store is None:
            context.abort(grpc.StatusCode.INTERNAL, "plugin not initialized")
        count = 0
        try:
            for req in request_iterator:
                if self.delay:
                    time.sleep(self.delay)
                self.handle(store, req)
                count += 1
        except grpc.RpcError as e:
            self.log.warn("write stream ended abnormally", error=str(e), messages=count)
            store.event("write_cancelled", messages=count)
            store.close_files()
            raise
        except Exception as e:  # an undecodable message: report it like an SDK destination
            self.log.error("write failed", error=repr(e), messages=count)
            store.event("write_failed", messages=count, error=repr(e))
            store.close_files()
            context.abort(grpc.StatusCode.INTERNAL, "write failed: %r" % e)
        store.event("write_end", messages=count)
        store.close_files()
        self.log.info("write stream finished", messages=count)
        return plugin_pb2.Write.Response()

    def handle(self, store, req):
        kind = req.WhichOneof("message")
        if kind == "migrate_table":
            schema = pa.ipc.open_stream(req.migrate_table.table).schema
            entry = store.migrate(schema, req.migrate_table.migrate_force)
            self.log.debug("migrate_table", table=entry["table"], seq=entry["seq"])
        elif kind == "insert":
            with pa.ipc.open_stream(req.insert.record) as reader:
                batch = reader.read_next_batch()
            entry = store.insert(batch)
            self.log.debug("insert", table=entry["table"], rows=entry["rows"], seq=entry["seq"])
        elif kind == "delete_record":
            msg = req.delete_record
            groups = []
            for g in msg.where_clause:
                preds = []
                for p in g.predicates:
                    values, type_name = decode_predicate_values(p.record)
                    if len(values) != 1:
                        self.log.warn("predicate record without exactly one row", rows=len(values))
                    preds.append(
                        {
                            "column": p.column,
                            "operator": plugin_pb2.Predicate.Operator.Name(p.operator),
                            "values": values,
                            "type": type_name,
                        }
                    )
                groups.append(
                    {
                        "grouping": plugin_pb2.PredicatesGroup.GroupingType.Name(g.grouping_type),
                        "predicates": preds,
                    }
                )
            relations = [
                {"table_name": r.table_name, "parent_table": r.parent_table}
                for r in msg.table_relations
            ]
            entry = store.delete_record(msg.table_name, groups, relations)
            self.log.debug("delete_record", table=msg.table_name, deleted=entry["deleted"])
        elif kind == "delete":
            msg = req.delete
            table = msg.table_name
            if not table and msg.table:
                table = cqdest_store.schema_table_name(pa.ipc.open_stream(msg.table).schema)
            us = msg.sync_time.seconds * 1_000_000 + msg.sync_time.nanos // 1000
            entry = store.delete_stale(table, msg.source_name, us)
            self.log.debug("delete_stale", table=table, deleted=entry["deleted"])
        else:
            store.other(kind or "empty")
            self.log.warn("unexpected write message", kind=kind)


class Discovery(discovery_pb2_grpc.DiscoveryServicer):
    def GetVersions(self, request, context):
        return discovery_pb2.GetVersions.Response(versions=[3])


def parse_spec(raw):
    try:
        spec = json.loads(raw or b"null")
    except ValueError as e:
        raise ValueError("spec is not JSON: %s" % e) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("dir"), str) or not spec["dir"]:
        raise ValueError("spec.dir is required (a directory path)")
    unknown = set(spec) - {"dir", "delay_ms", "state"}
    if unknown:
        raise ValueError("unknown spec keys: %s" % ", ".join(sorted(unknown)))
    delay = spec.get("delay_ms", 0)
    if not isinstance(delay, (int, float)) or delay < 0:
        raise ValueError("spec.delay_ms must be a number >= 0")
    return {"dir": spec["dir"], "delay_ms": delay, "state": bool(spec.get("state", True))}


def serve(argv):
    opts = parse_args(argv)
    log = Logger(opts.get("log-level", "info"), opts.get("log-format", "text"))
    network, address = opts["network"], opts["address"]
    if network.startswith("unix"):
        path = address[len("unix:") :] if address.startswith("unix:") else address
        if os.path.exists(path):
            os.unlink(path)
        target = "unix:" + path
    else:
        path = None
        target = address
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.max_receive_message_length", MAX_MSG),
            ("grpc.max_send_message_length", MAX_MSG),
        ],
    )
    dest = Destination(log)
    plugin_pb2_grpc.add_PluginServicer_to_server(dest, server)
    discovery_pb2_grpc.add_DiscoveryServicer_to_server(Discovery(), server)
    if server.add_insecure_port(target) == 0 and network != "unix":
        log.error("failed to bind", address=address)
        return 1
    server.start()
    log.info("Plugin server listening", address=address, plugin=NAME)

    stopping = threading.Event()

    def on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopping.wait(0.2):
        pass
    log.info("shutting down", signal=True)
    server.stop(grace=1).wait(3)
    if dest.store is not None:
        dest.store.event("shutdown")
        dest.store.close()
    if path and os.path.exists(path):
        os.unlink(path)
    sys.stdout.flush()
    os._exit(0)  # do not wait for worker threads still blocked in a cancelled stream


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "--version":
        print(VERSION)
        return 0
    if argv[0] != "serve":
        sys.stderr.write("unknown command %r (only `serve` is supported)\n" % argv[0])
        return 2
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
