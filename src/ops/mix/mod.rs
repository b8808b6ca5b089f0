//! mix ops: being written.
