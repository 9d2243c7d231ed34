"""Self-test of the test destination's canonical JSON and state application (no gRPC, no CLI).

Run: python3 tests/destination/selftest.py   (re-executes itself with the project's virtualenv
when this interpreter has no pyarrow). Exit status 0 when every check passes.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE] + [_HERE]

try:
    import pyarrow as pa
except ImportError:
    default_cache = (
        "/var/cache/cq-source-postgresql"
        if os.geteuid() == 0
        else os.path.expanduser("~/.cache/cq-source-postgresql")
    )
    cache = os.environ.get("CQ_CACHE_DIR", default_cache)
    python = os.path.join(os.environ.get("CQPG_VENV", os.path.join(cache, "venv")), "bin", "python")
    if os.path.exists(python) and not os.environ.get("CQDEST_SELFTEST_REEXEC"):
        os.environ["CQDEST_SELFTEST_REEXEC"] = "1"
        os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("selftest: pyarrow is missing and no virtualenv at %s (run scripts/setup.sh)" % python)

import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import unittest  # noqa: E402
import uuid  # noqa: E402
from decimal import Decimal  # noqa: E402

import cqdest_store as store  # noqa: E402
import cqdest_values as cv  # noqa: E402
import inspect as stdlib_inspect  # noqa: E402

I32_MAX, I32_MIN = 2**31 - 1, -(2**31)
I64_MAX, I64_MIN = 2**63 - 1, -(2**63)
PK = {"cq:extension:primary_key": "true"}


def ext_field(name, storage, ext):
    md = {"ARROW:extension:name": ext, "ARROW:extension:metadata": ext + "-serialized"}
    return pa.field(name, storage, metadata=md)


def canon(field, values):
    return cv.column_values(field, pa.array(values, field.type))


class UuidType(pa.ExtensionType):
    def __init__(self):
        super().__init__(pa.binary(16), "uuid")

    def __arrow_ext_serialize__(self):
        return b"uuid-serialized"

    @classmethod
    def __arrow_ext_deserialize__(cls, storage_type, serialized):
        return cls()


class CanonicalValues(unittest.TestCase):
    def test_not_shadowed(self):
        self.assertTrue(hasattr(stdlib_inspect, "signature"), "stdlib inspect must win")

    def test_integers_and_bool(self):
        f = pa.field("x", pa.int64())
        self.assertEqual(canon(f, [I64_MIN, 0, None, I64_MAX]), [I64_MIN, 0, None, I64_MAX])
        f = pa.field("x", pa.uint64())
        self.assertEqual(canon(f, [2**64 - 1, None]), [2**64 - 1, None])
        self.assertEqual(canon(pa.field("b", pa.bool_()), [True, None, False]), [True, None, False])

    def test_floats(self):
        f32 = pa.field("x", pa.float32())
        nan, inf = float("nan"), float("inf")
        self.assertEqual(
            canon(f32, [1.1, nan, inf, -inf, None, 0.0, 3.4028234663852886e38]),
            [1.1, "NaN", "Infinity", "-Infinity", None, 0.0, 3.4028235e38],
        )
        f64 = pa.field("x", pa.float64())
        self.assertEqual(canon(f64, [0.1, -nan, 1e300]), [0.1, "NaN", 1e300])
        self.assertEqual(json.dumps(canon(f32, [1.1])), "[1.1]")

    def test_strings_and_binary(self):
        self.assertEqual(canon(pa.field("s", pa.utf8()), ["é", "", None]), ["é", "", None])
        self.assertEqual(canon(pa.field("s", pa.large_utf8()), ["a"]), ["a"])
        b = pa.field("b", pa.binary())
        self.assertEqual(canon(b, [b"\x00\xff", b"", None]), ["\\x00ff", "\\x", None])
        self.assertEqual(canon(pa.field("b", pa.large_binary()), [b"\x01"]), ["\\x01"])

    def test_extensions_as_storage(self):
        u = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        f = ext_field("u", pa.binary(16), "uuid")
        self.assertEqual(canon(f, [u.bytes, None]), [str(u), None])
        f = ext_field("j", pa.binary(), "json")
        self.assertEqual(
            canon(f, [b'{"b": 1, "a": [1.50]}', b'"s"', b"\xff", None]),
            ['{"b": 1, "a": [1.50]}', '"s"', "\\xff", None],
        )
        f = ext_field("i", pa.binary(), "inet")
        self.assertEqual(canon(f, [b"10.0.0.1/32", b"::1/128"]), ["10.0.0.1/32", "::1/128"])
        f = ext_field("m", pa.binary(), "mac")
        self.assertEqual(
            canon(f, [bytes.fromhex("08002b010203"), bytes.fromhex("08002b0102030405")]),
            ["08:00:2b:01:02:03", "08:00:2b:01:02:03:04:05"],
        )

    def test_registered_extension(self):
        t = UuidType()
        u = uuid.UUID(int=5)
        arr = pa.ExtensionArray.from_storage(t, pa.array([u.bytes, None], pa.binary(16)))
        self.assertEqual(cv.column_values(pa.field("u", t), arr), [str(u), None])
        self.assertEqual(cv.extension_name(pa.field("u", t)), "uuid")
        self.assertEqual(cv.type_name(pa.field("u", t)), "fixed_size_binary[16]")

    def test_dates(self):
        f = pa.field("d", pa.date32())
        self.assertEqual(
            canon(f, [0, -1, 19000, None, I32_MAX, I32_MIN, 2932896, -719162]),
            [
                "1970-01-01",
                "1969-12-31",
                "2022-01-08",
                None,
                "date32:2147483647",
                "date32:-2147483648",
                "9999-12-31",
                "0001-01-01",
            ],
        )
        self.assertEqual(canon(pa.field("d", pa.date32()), [2932897]), ["date32:2932897"])
        f = pa.field("d", pa.date64())
        self.assertEqual(canon(f, [86_400_000, I64_MAX]), ["1970-01-02", "date64:%d" % I64_MAX])

    def test_times(self):
        self.assertEqual(
            canon(pa.field("t", pa.time32("s")), [3723, 86400]), ["01:02:03", "24:00:00"]
        )
        self.assertEqual(
            canon(pa.field("t", pa.time32("ms")), [1, None]), ["00:00:00.001000", None]
        )
        self.assertEqual(
            canon(pa.field("t", pa.time64("us")), [0, 45296789012]),
            ["00:00:00", "12:34:56.789012"],
        )
        self.assertEqual(canon(pa.field("t", pa.time64("ns")), [1]), ["00:00:00.000000001"])
        arr = pa.array([-1, I64_MAX], pa.int64()).view(pa.time64("us"))
        self.assertEqual(
            cv.column_values(pa.field("t", pa.time64("us")), arr),
            ["time64[us]:-1", "time64[us]:%d" % I64_MAX],
        )

    def test_timestamps(self):
        tz = pa.field("t", pa.timestamp("us", tz="UTC"))
        self.assertEqual(
            canon(tz, [0, 1, -1, None, 253402300799999999, I64_MAX, I64_MIN]),
            [
                "1970-01-01T00:00:00Z",
                "1970-01-01T00:00:00.000001Z",
                "1969-12-31T23:59:59.999999Z",
                None,
                "9999-12-31T23:59:59.999999Z",
                "timestamp[us]:%d" % I64_MAX,
                "timestamp[us]:%d" % I64_MIN,
            ],
        )
        self.assertEqual(canon(pa.field("t", pa.timestamp("s")), [86400]), ["1970-01-02T00:00:00"])
        self.assertEqual(
            canon(pa.field("t", pa.timestamp("ms", tz="UTC")), [1500]),
            ["1970-01-01T00:00:01.500000Z"],
        )
        self.assertEqual(
            canon(pa.field("t", pa.timestamp("ns", tz="UTC")), [I64_MAX]),
            ["2262-04-11T23:47:16.854775807Z"],
        )
        self.assertEqual(
            canon(pa.field("t", pa.timestamp("s", tz="UTC")), [-62135596800]),
            ["0001-01-01T00:00:00Z"],
        )

    def test_lists(self):
        f = pa.field("l", pa.list_(pa.int32()))
        self.assertEqual(canon(f, [[1, None, 3], [], None]), [[1, None, 3], [], None])
        # a sliced array (non-zero offset) keeps its own rows
        arr = pa.array([[1], [2, 3], [4]], pa.list_(pa.int32())).slice(1, 2)
        self.assertEqual(cv.column_values(f, arr), [[2, 3], [4]])
        child = ext_field("item", pa.binary(16), "uuid")
        f = pa.field("l", pa.list_(child))
        self.assertEqual(
            canon(f, [[uuid.UUID(int=1).bytes, None]]), [[str(uuid.UUID(int=1)), None]]
        )
        f = pa.field("l", pa.large_list(pa.float32()))
        self.assertEqual(canon(f, [[float("nan"), 1.5]]), [["NaN", 1.5]])
        f = pa.field("l", pa.list_(pa.list_(pa.utf8())))
        self.assertEqual(canon(f, [[["a"], None, []]]), [[["a"], None, []]])
        f = pa.field("l", pa.list_(pa.int8(), 2))
        self.assertEqual(canon(f, [[1, 2], None]), [[1, 2], None])

    def test_other_types(self):
        st = pa.field("s", pa.struct([("a", pa.int32()), ("b", pa.utf8())]))
        self.assertEqual(canon(st, [{"a": 1, "b": "x"}, None]), [{"a": 1, "b": "x"}, None])
        m = pa.field("m", pa.map_(pa.utf8(), pa.int32()))
        self.assertEqual(canon(m, [[("k", 1)], None]), [[["k", 1]], None])
        d = pa.field("d", pa.decimal128(19, 10))
        self.assertEqual(canon(d, [Decimal("1.5")]), ["1.5000000000"])
        d = pa.field("d", pa.decimal128(38, 10))
        self.assertEqual(canon(d, [Decimal("1E-10"), Decimal("0")]), ["0.0000000001", "0.0000000000"])
        d = pa.field("d", pa.decimal256(76, 0))
        self.assertEqual(canon(d, [Decimal("-1" + "0" * 75)]), ["-1" + "0" * 75])
        i = pa.field("i", pa.month_day_nano_interval())
        self.assertEqual(canon(i, [(1, -2, 3000), None]), [[1, -2, 3000], None])
        self.assertEqual(canon(pa.field("n", pa.null()), [None, None]), [None, None])
        dic = pa.array(["a", "b", "a"]).dictionary_encode()
        self.assertEqual(cv.column_values(pa.field("x", dic.type), dic), ["a", "b", "a"])
        self.assertEqual(canon(pa.field("d", pa.duration("us")), [5]), [5])

    def test_sort_key(self):
        keys = [[10], [9], [None], ["b"], ["a"], [True]]
        self.assertEqual(sorted(keys, key=cv.sort_key), [[None], [True], [9], [10], ["a"], ["b"]])


def schema(table, fields):
    return pa.schema(fields, metadata={"cq:table_name": table})


def sync_fields():
    return [
        pa.field("_cq_sync_time", pa.timestamp("us", tz="UTC")),
        pa.field("_cq_source_name", pa.utf8()),
    ]


class StoreApplication(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cqdest-selftest-")
        self.items = schema(
            "items",
            sync_fields()
            + [
                pa.field("k1", pa.int64(), nullable=False, metadata=PK),
                pa.field("k2", pa.utf8(), nullable=False, metadata=PK),
                pa.field("v", pa.utf8()),
            ],
        )

    def tearDown(self):
        shutil.rmtree(self.dir)

    def batch(self, rows, sync_us=1_000_000, source="src"):
        n = len(rows)
        return pa.record_batch(
            [
                pa.array([sync_us] * n, pa.timestamp("us", tz="UTC")),
                pa.array([source] * n),
                pa.array([r[0] for r in rows], pa.int64()),
                pa.array([r[1] for r in rows]),
                pa.array([r[2] for r in rows]),
            ],
            schema=self.items,
        )

    def pred(self, column, value, type_=None):
        type_ = type_ or pa.int64()
        values = cv.column_values(pa.field(column, type_), pa.array([value], type_))
        return {"column": column, "operator": "EQ", "values": values}

    def state(self, table="items"):
        return [(r["k1"], r["k2"], r["v"]) for r in store.state_rows(self.dir, table)]

    def test_upsert_delete_and_sort(self):
        s = store.Store(self.dir)
        s.migrate(self.items)
        s.insert(self.batch([(10, "a", "x"), (9, "a", "y"), (9, "b", "z")]))
        s.insert(self.batch([(10, "a", "x2")]))
        self.assertEqual(self.state(), [(9, "a", "y"), (9, "b", "z"), (10, "a", "x2")])
        # AND group: both columns must match
        e = s.delete_record(
            "items",
            [
                {
                    "grouping": "AND",
                    "predicates": [self.pred("k1", 9), self.pred("k2", "b", pa.utf8())],
                }
            ],
        )
        self.assertEqual(e["deleted"], 1)
        self.assertEqual(self.state(), [(9, "a", "y"), (10, "a", "x2")])
        # OR group, ANDed with a second group
        e = s.delete_record(
            "items",
            [
                {"grouping": "OR", "predicates": [self.pred("k1", 9), self.pred("k1", 10)]},
                {"grouping": "AND", "predicates": [self.pred("v", "x2", pa.utf8())]},
            ],
        )
        self.assertEqual(e["deleted"], 1)
        self.assertEqual(self.state(), [(9, "a", "y")])
        # a NULL value matches nothing; an unknown column matches nothing
        e = s.delete_record(
            "items", [{"grouping": "AND", "predicates": [self.pred("v", None, pa.utf8())]}]
        )
        self.assertEqual(e["deleted"], 0)
        e = s.delete_record("items", [{"grouping": "AND", "predicates": [self.pred("nope", 9)]}])
        self.assertEqual(e["deleted"], 0)
        # no groups: every row of the table
        e = s.delete_record("items", [])
        self.assertEqual((e["deleted"], self.state()), (1, []))
        s.close()

    def test_delete_stale_and_no_pk(self):
        s = store.Store(self.dir)
        s.insert(self.batch([(1, "a", "old")], sync_us=1_000_000, source="src"))
        s.insert(self.batch([(2, "a", "other")], sync_us=1_000_000, source="other"))
        s.insert(self.batch([(3, "a", "new")], sync_us=2_000_000, source="src"))
        e = s.delete_stale("items", "src", 2_000_000)
        self.assertEqual(e["deleted"], 1)
        self.assertEqual(e["sync_time"], "1970-01-01T00:00:02Z")
        self.assertEqual(self.state(), [(2, "a", "other"), (3, "a", "new")])
        nopk = schema("nopk", [pa.field("v", pa.int32())])
        for _ in range(2):
            s.insert(pa.record_batch([pa.array([7, 7], pa.int32())], schema=nopk))
        self.assertEqual(store.state_rows(self.dir, "nopk"), [{"v": 7}] * 4)
        s.close()

    def test_generations_log_and_reopen(self):
        s = store.Store(self.dir)
        s.migrate(self.items)
        s.insert(self.batch([(1, "a", "x")]))
        s.migrate(self.items)  # same schema: same generation
        s.insert(self.batch([(2, "a", "x")]))
        other = schema("items", [pa.field("k1", pa.int64(), metadata=PK)])
        s.migrate(other)  # a different schema: a new generation
        s.insert(pa.record_batch([pa.array([3], pa.int64())], schema=other))
        s.close()
        log = store.read_log(self.dir)
        self.assertEqual([e["seq"] for e in log], list(range(1, 7)))
        inserts = [(e["file"], e["batch"]) for e in log if e["type"] == "insert"]
        self.assertEqual(
            inserts,
            [
                ("tables/items.1.arrows", 0),
                ("tables/items.1.arrows", 1),
                ("tables/items.2.arrows", 0),
            ],
        )
        batches, complete = store.read_batches(os.path.join(self.dir, "tables/items.1.arrows"))
        self.assertEqual((len(batches), complete), (2, True))
        # a torn log line and a torn Arrow file (a killed process) stay readable
        with open(os.path.join(self.dir, "log.jsonl"), "ab") as f:
            f.write(b'{"seq": 7, "type": "ins')
        path = os.path.join(self.dir, "tables/items.1.arrows")
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size - 20)
        batches, complete = store.read_batches(path)
        self.assertEqual((len(batches), complete), (1, False))
        s = store.Store(self.dir)  # continues seq and generation numbers
        e = s.insert(self.batch([(4, "a", "x")]))
        self.assertEqual((e["seq"], e["file"]), (7, "tables/items.3.arrows"))
        s.close()
        self.assertEqual(store.read_log(self.dir)[-1]["seq"], 7)
        self.assertEqual([r["k1"] for r in store.state_rows(self.dir, "items")], [1, 2, 3, 4])

    def test_file_stem(self):
        self.assertEqual(store.file_stem("sales.orders"), "sales.orders")
        self.assertEqual(store.file_stem("a/b c"), "a%2Fb%20c")


if __name__ == "__main__":
    unittest.main(verbosity=1)
