-- mixed9: :rows rows (2,000,000 at scale 1) of nine mixed types. Deterministic: every value is a
-- function of the row number g (hashint8, md5).
DROP TABLE IF EXISTS mixed9;
CREATE TABLE mixed9 (
    id int8 PRIMARY KEY,
    i4 int4 NOT NULL,
    t text,
    f8 float8,
    ts timestamptz,
    b bool,
    n numeric(12, 2),
    u uuid,
    j jsonb
);
INSERT INTO mixed9
SELECT g,
       (hashint8(g) % 1000000000)::int4,
       substr(md5(g::text), 1, 20),
       (hashint8(g + 1) % 10000000) / 1000.0,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 second',
       hashint8(g + 2) % 2 = 0,
       ((hashint8(g + 3) % 10000000000) / 100.0)::numeric(12, 2),
       md5(g::text || 'u')::uuid,
       jsonb_build_object('k', g % 100, 'v', substr(md5(g::text), 21, 8), 'ok', g % 3 = 0)
FROM generate_series(1, :rows) AS g;
