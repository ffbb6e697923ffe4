//! One module per command family; each turns a context and its flags into output.

pub mod doctor;
pub mod pricing;
pub mod reports;
pub mod usage;
