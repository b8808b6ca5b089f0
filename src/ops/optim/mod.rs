//! optim ops: being written.
