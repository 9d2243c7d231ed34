"""Canonical JSON of Arrow values, shared by the test destination, inspect.py and selftest.py.

The canonical form is what the Rust tests compare against, so it is deliberately simple and total
(every value renders, nothing raises):

- null (any type) -> null
- bool, int*, uint* -> JSON boolean / integer (exact, any width)
- float32, float64 -> JSON number (float32: the shortest text that round-trips as a float32, so
  1.1f is 1.1); NaN, +Inf, -Inf -> the strings "NaN", "Infinity", "-Infinity"
- utf8, large_utf8 -> string
- extension uuid -> "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (lower case)
- extension json -> the UTF-8 JSON text as a string (not re-encoded)
- extension inet -> the text, e.g. "10.0.0.1/32"
- extension mac -> lower-case colon hex, e.g. "08:00:2b:01:02:03"
- binary, large_binary, fixed_size_binary -> "\\x" + lower-case hex (PostgreSQL's bytea hex form);
  json/inet bytes that are not UTF-8 also fall back to this form
- date32, date64 -> "YYYY-MM-DD"
- time32, time64 -> "HH:MM:SS", "HH:MM:SS.ffffff" when the microseconds are not zero,
  "HH:MM:SS.fffffffff" when there are nanoseconds (24:00:00 stays 24:00:00)
- timestamp -> "YYYY-MM-DDTHH:MM:SS[.ffffff|.fffffffff]", plus "Z" when the type has a time zone
- list, large_list, fixed_size_list -> JSON array of the canonical elements
- struct -> JSON object; map -> JSON array of [key, value] pairs
- decimal -> string in plain notation with exactly the type's scale digits, e.g. "1.50",
  "0.0000000001", "-12" (never an exponent); duration -> integer count of the type's unit
- interval month_day_nano -> [months, days, nanoseconds]
- dictionary -> the decoded values; anything else -> str() of the Python value

Values a calendar type cannot show (years outside 1..9999 of Python's datetime, e.g. a date32 of
i32::MAX, or a timestamp beyond 9999-12-31) render as "<type>:<raw integer>", for example
"date32:2147483647", "timestamp[us]:9223372036854775807", "time64[us]:-1".

Extension types are recognised both when pyarrow surfaces them as plain storage types with the field
metadata `ARROW:extension:name` (unregistered extensions, the normal case here) and when they arrive
as registered `pa.ExtensionType`s.
"""

import datetime
import json
import math
import struct
import uuid

import pyarrow as pa

EXT_NAME = "ARROW:extension:name"
PK_KEY = "cq:extension:primary_key"
_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()
_MIN_ORDINAL = datetime.date.min.toordinal()
_MAX_ORDINAL = datetime.date.max.toordinal()
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def decode_metadata(md):
    """Arrow metadata (bytes -> bytes) as a str -> str dict."""
    if not md:
        return {}
    return {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in md.items()}


def extension_name(field):
    """The CloudQuery extension name of a field (uuid, json, inet, mac) or None."""
    if isinstance(field.type, pa.ExtensionType):
        return field.type.extension_name
    md = field.metadata or {}
    name = md.get(EXT_NAME.encode())
    return name.decode("utf-8", "replace") if name is not None else None


def type_name(field):
    """The Arrow type of a field as text (the storage type for extensions)."""
    t = field.type
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    return str(t)


def describe_field(field):
    return {
        "name": field.name,
        "type": type_name(field),
        "extension": extension_name(field),
        "nullable": field.nullable,
        "metadata": decode_metadata(field.metadata),
    }


def is_pk(field):
    return (field.metadata or {}).get(PK_KEY.encode()) == b"true"


# ---------------------------------------------------------------------------------------------
# scalar helpers


def float_value(x, single=False):
    if x is None:
        return None
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if single:
        packed = struct.pack("<f", x)
        for digits in range(1, 10):
            text = "%.*g" % (digits, x)
            try:
                if struct.pack("<f", float(text)) == packed:
                    return float(text)
            except OverflowError:  # rounded past the float32 range
                continue
    return float(x)


def bytes_hex(b):
    return "\\x" + b.hex()


def ext_bytes(ext, b):
    if ext == "uuid" and len(b) == 16:
        return str(uuid.UUID(bytes=bytes(b)))
    if ext in ("json", "inet"):
        try:
            return bytes(b).decode("utf-8")
        except UnicodeDecodeError:
            return bytes_hex(b)
    if ext == "mac":
        return ":".join("%02x" % c for c in b)
    return bytes_hex(b)


def _fraction(ns):
    if ns == 0:
        return ""
    if ns % 1000 == 0:
        return ".%06d" % (ns // 1000)
    return ".%09d" % ns


def time_of_day(raw, unit, label):
    if raw is None:
        return None
    total_ns = raw * _UNIT_NS[unit]
    if total_ns < 0 or total_ns > 86400 * 1_000_000_000:
        return "%s:%d" % (label, raw)
    secs, ns = divmod(total_ns, 1_000_000_000)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return "%02d:%02d:%02d%s" % (h, m, s, _fraction(ns))


def date_from_days(days, label, raw):
    ordinal = _EPOCH_ORDINAL + days
    if ordinal < _MIN_ORDINAL or ordinal > _MAX_ORDINAL:
        return None if label is None else "%s:%d" % (label, raw)
    return datetime.date.fromordinal(ordinal).isoformat()


def timestamp_value(raw, unit, tz, label):
    if raw is None:
        return None
    total_ns = raw * _UNIT_NS[unit]
    days, ns_of_day = divmod(total_ns, 86400 * 1_000_000_000)
    ordinal = _EPOCH_ORDINAL + days
    if ordinal < _MIN_ORDINAL or ordinal > _MAX_ORDINAL:
        return "%s:%d" % (label, raw)
    day = datetime.date.fromordinal(ordinal).isoformat()
    secs, ns = divmod(ns_of_day, 1_000_000_000)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return "%sT%02d:%02d:%02d%s%s" % (day, h, m, s, _fraction(ns), "Z" if tz else "")


def decimal_text(x, scale):
    """A decimal.Decimal of an Arrow decimal(p, scale) as plain text with `scale` fraction digits
    (numeric_out's form for a numeric(p, scale) value)."""
    return format(x, ".%df" % max(scale, 0))


# ---------------------------------------------------------------------------------------------
# column-wise conversion


def _valid(arr):
    return arr.is_valid().to_pylist() if arr.null_count else None


def _with_nulls(values, valid):
    if valid is None:
        return values
    return [v if ok else None for v, ok in zip(values, valid, strict=True)]


def column_values(field, arr):
    """Canonical JSON values (Python objects) of one Arrow array described by `field`."""
    if isinstance(arr, pa.ChunkedArray):
        out = []
        for chunk in arr.chunks:
            out.extend(column_values(field, chunk))
        return out
    ext = extension_name(field)
    t = field.type
    if isinstance(arr, pa.ExtensionArray):
        arr = arr.storage
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    valid = _valid(arr)

    if pa.types.is_null(t):
        return [None] * len(arr)
    if pa.types.is_boolean(t) or pa.types.is_integer(t):
        return arr.to_pylist()
    if pa.types.is_floating(t):
        single = pa.types.is_float32(t) or pa.types.is_float16(t)
        return [float_value(x, single) for x in arr.to_pylist()]
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.to_pylist()
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_fixed_size_binary(t)
        or pa.types.is_binary_view(t)
    ):
        return [None if b is None else ext_bytes(ext, b) for b in arr.to_pylist()]
    if pa.types.is_date32(t):
        raw = arr.view(pa.int32()).to_pylist()
        return [None if d is None else date_from_days(d, "date32", d) for d in raw]
    if pa.types.is_date64(t):
        raw = arr.view(pa.int64()).to_pylist()
        return [None if d is None else date_from_days(d // 86_400_000, "date64", d) for d in raw]
    if pa.types.is_time32(t) or pa.types.is_time64(t):
        raw = arr.view(pa.int32() if pa.types.is_time32(t) else pa.int64()).to_pylist()
        label = "%s[%s]" % ("time32" if pa.types.is_time32(t) else "time64", t.unit)
        return [time_of_day(x, t.unit, label) for x in raw]
    if pa.types.is_timestamp(t):
        raw = arr.view(pa.int64()).to_pylist()
        label = "timestamp[%s]" % t.unit
        return [timestamp_value(x, t.unit, t.tz, label) for x in raw]
    if pa.types.is_duration(t):
        return arr.view(pa.int64()).to_pylist()
    if pa.types.is_decimal(t):
        return [None if x is None else decimal_text(x, t.scale) for x in arr.to_pylist()]
    if pa.types.is_interval(t):
        return [
            None if x is None else [x.months, x.days, x.nanoseconds] for x in arr.to_pylist()
        ]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _list_values(t, arr, valid)
    if pa.types.is_map(t):
        keys = column_values(t.key_field, arr.keys)
        items = column_values(t.item_field, arr.items)
        offsets = arr.offsets.to_pylist()
        out = [
            [[keys[j], items[j]] for j in range(offsets[i], offsets[i + 1])]
            for i in range(len(arr))
        ]
        return _with_nulls(out, valid)
    if pa.types.is_struct(t):
        children = [
            (t.field(i).name, column_values(t.field(i), arr.field(i))) for i in range(t.num_fields)
        ]
        out = [{name: vals[i] for name, vals in children} for i in range(len(arr))]
        return _with_nulls(out, valid)
    return [None if x is None else str(x) for x in arr.to_pylist()]


def _list_values(t, arr, valid):
    child = t.value_field
    if pa.types.is_fixed_size_list(t):
        size = t.list_size
        flat = column_values(child, arr.values.slice(arr.offset * size, len(arr) * size))
        out = [flat[i * size : (i + 1) * size] for i in range(len(arr))]
    else:
        offsets = arr.offsets.to_pylist()
        start = offsets[0] if offsets else 0
        end = offsets[-1] if offsets else 0
        flat = column_values(child, arr.values.slice(start, end - start))
        out = [flat[offsets[i] - start : offsets[i + 1] - start] for i in range(len(arr))]
    return _with_nulls(out, valid)


def batch_rows(batch):
    """The rows of a record batch as a list of dicts (column order kept), canonical values."""
    cols = [
        (field.name, column_values(field, batch.column(i))) for i, field in enumerate(batch.schema)
    ]
    return [{name: vals[r] for name, vals in cols} for r in range(batch.num_rows)]


def dumps(value):
    """Compact canonical JSON text (keys sorted): what the state stores and compares."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sort_key(value):
    """A total order over canonical JSON values (numbers before strings, …) for sorting by PK."""
    if value is None:
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, list):
        return (4, [sort_key(v) for v in value])
    return (5, dumps(value))


def strip_cq(row):
    return {k: v for k, v in row.items() if not k.startswith("_cq_")}
