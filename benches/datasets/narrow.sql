-- narrow (:rows rows, 10,000,000 at scale 1) and narrow_small (:small_rows, 1,000,000 at scale 1,
-- for the memory comparison): five fixed-width columns. Deterministic.
DROP TABLE IF EXISTS narrow;
DROP TABLE IF EXISTS narrow_small;
CREATE TABLE narrow (id int8 PRIMARY KEY, a int8, b int4, c float8, ts timestamptz);
INSERT INTO narrow
SELECT g, hashint8(g), (hashint8(g + 1) % 1000000000)::int4, hashint8(g + 2) / 1e9::float8,
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 millisecond'
FROM generate_series(1, :rows) AS g;
CREATE TABLE narrow_small (LIKE narrow INCLUDING ALL);
INSERT INTO narrow_small SELECT * FROM narrow WHERE id <= :small_rows;
