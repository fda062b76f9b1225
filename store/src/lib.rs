//! rbuild store (filled by a later issue).
