//! loss ops: being written.
