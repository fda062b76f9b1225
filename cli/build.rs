//! Link flags of the rbuild binary.

// Cargo reads a build script's stdout: println! is its interface (the outln! rule is for
// the binary's own output).
#![allow(clippy::disallowed_macros)]

fn main() {
    // Packed relative relocations (DT_RELR; glibc >= 2.36, binutils >= 2.38, both in
    // bookworm): the position-independent binary's 23,500 R_X86_64_RELATIVE entries were
    // 560 KB the loader read and applied one by one at every start — a sixth of an
    // `rbuild exec`. As a bitmap they are a few KB.
    println!("cargo:rustc-link-arg-bin=rbuild=-Wl,-z,pack-relative-relocs");
    println!("cargo:rerun-if-changed=build.rs");
}
