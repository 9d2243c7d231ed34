-- lineitem: :rows rows (6,000,000 at scale 1) with the TPC-H lineitem column types and value
-- shapes (not dbgen's exact values). Deterministic: every value is a function of g.
DROP TABLE IF EXISTS lineitem;
CREATE TABLE lineitem (
    l_orderkey int8 NOT NULL,
    l_partkey int8 NOT NULL,
    l_suppkey int8 NOT NULL,
    l_linenumber int4 NOT NULL,
    l_quantity numeric(15, 2) NOT NULL,
    l_extendedprice numeric(15, 2) NOT NULL,
    l_discount numeric(15, 2) NOT NULL,
    l_tax numeric(15, 2) NOT NULL,
    l_returnflag char(1) NOT NULL,
    l_linestatus char(1) NOT NULL,
    l_shipdate date NOT NULL,
    l_commitdate date NOT NULL,
    l_receiptdate date NOT NULL,
    l_shipinstruct char(25) NOT NULL,
    l_shipmode char(10) NOT NULL,
    l_comment varchar(44) NOT NULL,
    PRIMARY KEY (l_orderkey, l_linenumber)
);
INSERT INTO lineitem
SELECT g / 4 + 1,
       abs(h % 200000) + 1,
       abs(h % 10000) + 1,
       (g % 4 + 1)::int4,
       (abs(h % 50) + 1)::numeric(15, 2),
       (abs(h % 10000000) / 100.0)::numeric(15, 2),
       (abs(h % 11) / 100.0)::numeric(15, 2),
       (abs(h % 9) / 100.0)::numeric(15, 2),
       (ARRAY['A', 'N', 'R'])[abs(h % 3) + 1],
       (ARRAY['F', 'O'])[abs(h % 2) + 1],
       date '1992-01-02' + abs(h % 2500)::int,
       date '1992-01-31' + abs(h % 2500)::int,
       date '1992-01-03' + abs(h % 2530)::int,
       (ARRAY['DELIVER IN PERSON', 'COLLECT COD', 'NONE', 'TAKE BACK RETURN'])[abs(h % 4) + 1],
       (ARRAY['REG AIR', 'AIR', 'RAIL', 'SHIP', 'TRUCK', 'MAIL', 'FOB'])[abs(h % 7) + 1],
       substr(md5(g::text) || md5(h::text), 1, 10 + abs(h % 34)::int)
FROM (SELECT g, hashint8(g) AS h FROM generate_series(0, :rows - 1) AS g) AS s;
