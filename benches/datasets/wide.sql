-- wide: :rows rows (200,000 at scale 1) of about 4 kB: a 2,048-character text and a jsonb of
-- about 2 kB, both stored out of line in the TOAST table (STORAGE EXTERNAL: no compression, so
-- every value is TOASTed whatever its content). Deterministic.
DROP TABLE IF EXISTS wide;
CREATE TABLE wide (id int8 PRIMARY KEY, title text, body text, doc jsonb);
ALTER TABLE wide ALTER COLUMN body SET STORAGE EXTERNAL, ALTER COLUMN doc SET STORAGE EXTERNAL;
INSERT INTO wide
SELECT g,
       'title ' || md5(g::text),
       repeat(md5(g::text || 'b'), 64),
       jsonb_build_object('id', g, 'payload', repeat(md5(g::text || 'j'), 56),
                          'tags', jsonb_build_array(g % 7, g % 11, md5(g::text)))
FROM generate_series(1, :rows) AS g;
