//! Arbitrary bytes → the pgoutput parser, outside and inside a streamed transaction; every part
//! of a parsed message (tuple values, relation columns, truncated relation ids) is walked.
#![no_main]

use cq_source_postgresql::decode::pgoutput::{parse, parse_streamed, PgOutputMessage, TupleData};
use libfuzzer_sys::fuzz_target;

fn walk(t: &TupleData<'_>) -> usize {
    let n = t.iter().count();
    assert_eq!(n, t.len(), "a validated tuple yields every column");
    n
}

fn visit(m: &PgOutputMessage<'_>) {
    match m {
        PgOutputMessage::Relation(r) => {
            assert_eq!(r.columns().count(), r.column_count());
        }
        PgOutputMessage::Insert(i) => {
            walk(&i.new);
        }
        PgOutputMessage::Update(u) => {
            if let Some((_, old)) = &u.old {
                walk(old);
            }
            walk(&u.new);
        }
        PgOutputMessage::Delete(d) => {
            walk(&d.old.1);
        }
        PgOutputMessage::Truncate(t) => {
            assert_eq!(t.relation_ids().count(), t.relation_count());
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse(data) {
        visit(&m);
    }
    if let Ok(m) = parse_streamed(data) {
        visit(&m);
    }
});
