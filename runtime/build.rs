//! Compiles docker's seccomp profile into the library's tables: see src/sandbox/seccomp/generate.rs.

#[path = "src/sandbox/seccomp/generate.rs"]
mod generate;

fn main() {
    generate::main();
}
