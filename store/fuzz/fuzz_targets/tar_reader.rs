//! Any bytes, plain or compressed: the tar reader must not panic, hang or allocate
//! without bound; every entry it hands out has a path the applier can judge, and its
//! data reads back no longer than the entry says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbuild_store::tar::Reader;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let Ok((_, stream)) = rbuild_store::compress::decompressed(data) else { return };
    // A compressed input may expand a lot: read at most 64 MiB of it.
    let mut r = Reader::new(stream.take(64 << 20));
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(Some(e)) = r.next_entry() {
        let _ = rbuild_store::layer::components(&e.path);
        let mut got = 0u64;
        loop {
            match r.data().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        assert!(got <= e.size, "{} bytes of data for an entry of {}", got, e.size);
    }
});
