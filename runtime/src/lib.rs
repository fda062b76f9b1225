//! rbuild runtime (filled by a later issue).
