//! rbuild's Dockerfile reader.
//!
//! Three layers, each usable on its own:
//! - [`ast`]: text to BuildKit-compatible nodes (directives, continuations, heredocs,
//!   flags, JSON/shell forms), with [`dump`] printing BuildKit's AST dump;
//! - [`instruction`] and [`dockerfile`]: nodes to typed instructions grouped in stages;
//! - [`graph`]: stages to the dependency graph, pruned to a target, with parallel levels.
//!
//! [`shell`] is the word expander the builder uses for ARG/ENV expansion.
//!
//! ```
//! use rbuild_parser::{Dockerfile, Graph};
//! let df = Dockerfile::parse("FROM busybox AS a\nRUN echo hi\nFROM busybox\nCOPY --from=a / /\n").unwrap();
//! let g = Graph::build(&df, &Default::default(), None).unwrap();
//! assert_eq!(g.levels, vec![vec![0], vec![1]]);
//! ```

pub mod ast;
pub mod diagnostic;
pub mod dockerfile;
pub mod dump;
pub mod frontend;
pub mod graph;
pub mod instruction;
pub mod json;
pub mod shell;

pub use diagnostic::{Diagnostic, Span};
pub use dockerfile::{Dockerfile, Stage};
pub use graph::{Base, Edge, EdgeKind, Graph};
pub use instruction::{Instruction, Kind};
