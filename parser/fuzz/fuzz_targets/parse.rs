//! Any bytes: the parser must not panic or hang, and whatever parses must print and
//! parse back to the same instructions.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild_parser::{ast, Dockerfile, Graph};

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let _ = ast::parse(&src).map(|a| rbuild_parser::dump::dump(&a));
    if let Ok(df) = Dockerfile::parse(&src) {
        let printed = df.print();
        let again = Dockerfile::parse(&printed).expect("printed Dockerfile must parse");
        assert_eq!(df.without_positions(), again.without_positions());
        let _ = Graph::build(&df, &Default::default(), None);
    }
});
