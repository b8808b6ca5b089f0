//! norm ops: being written.
