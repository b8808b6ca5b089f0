//! reduce ops: being written.
