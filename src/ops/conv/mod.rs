//! conv ops: being written.
