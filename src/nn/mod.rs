//! Network building blocks shared by models: parameter initialisation.

pub mod init;
