-- many: :tables tables (1,000 at scale 1) of 100 rows each, many_0001 … many_N, in the database
-- bench_many (so their catalog does not weigh on the other datasets' runs). Deterministic.
DO $$
DECLARE i int;
BEGIN
    FOR i IN 1 .. current_setting('bench.tables')::int LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', 'many_' || lpad(i::text, 4, '0'));
        EXECUTE format('CREATE TABLE %I (id int8 PRIMARY KEY, name text, qty int4, price numeric(10, 2), at timestamptz)',
                       'many_' || lpad(i::text, 4, '0'));
        EXECUTE format('INSERT INTO %I SELECT g, md5((g * %s)::text), g %% 50, (g * 1.25)::numeric(10, 2), '
                       'timestamptz ''2024-01-01 00:00:00+00'' + g * interval ''1 minute'' FROM generate_series(1, 100) AS g',
                       'many_' || lpad(i::text, 4, '0'), i);
    END LOOP;
END
$$;
