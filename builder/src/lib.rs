//! rbuild builder (filled by a later issue).
