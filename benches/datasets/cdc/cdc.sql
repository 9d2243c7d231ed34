-- cdc: the tables of the CDC benchmark (`sync_bench cdc`), loaded into the template database
-- `bench_cdc`; every run works on a fresh copy (CREATE DATABASE … TEMPLATE bench_cdc), because a
-- run updates and deletes rows and leaves a replication slot behind until it drops it.
-- Shaped after pgbench's TPC-B-like tables (accounts updated, history appended), with a primary
-- key everywhere so that every table is streamed. Deterministic.
--   cdc_accounts: :rows rows (1,000,000 at scale 1): the snapshot; the backlog updates, deletes
--                 and inserts accounts (each key at most once, so nothing coalesces)
--   cdc_history:  empty; the backlog appends to it (pgbench_history plus a key)
--   cdc_latency:  empty; the latency writer inserts one row per transaction, `seq` = 0, 1, 2, …
DROP TABLE IF EXISTS cdc_accounts;
DROP TABLE IF EXISTS cdc_history;
DROP TABLE IF EXISTS cdc_latency;
CREATE TABLE cdc_accounts (
    aid int8 PRIMARY KEY,
    bid int4 NOT NULL,
    abalance int4 NOT NULL,
    filler text,
    mtime timestamptz NOT NULL
);
INSERT INTO cdc_accounts
SELECT g, (g % 100)::int4 + 1, 0, md5(g::text) || md5((g + 1)::text),
       timestamptz '2020-01-01 00:00:00+00' + g * interval '1 millisecond'
FROM generate_series(1, :rows) AS g;
CREATE TABLE cdc_history (
    hid int8 PRIMARY KEY,
    tid int4 NOT NULL,
    bid int4 NOT NULL,
    aid int8 NOT NULL,
    delta int4 NOT NULL,
    mtime timestamptz NOT NULL,
    filler text
);
CREATE TABLE cdc_latency (
    seq int8 PRIMARY KEY,
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
