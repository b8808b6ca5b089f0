//! pool ops: being written.
