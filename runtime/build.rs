//! Compiles docker's seccomp profile into the library's tables: see src/seccomp/generate.rs.

#[path = "src/seccomp/generate.rs"]
mod generate;

fn main() {
    generate::main();
}
