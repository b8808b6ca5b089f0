//! linear ops: being written.
