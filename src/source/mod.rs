//! Where windows come from besides csm's own transcript reader (SPEC 11).

pub mod ccusage;
