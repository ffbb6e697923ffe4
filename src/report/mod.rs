//! Reports: aggregation into rows (pure), ccusage-shaped JSON, and tables.

pub mod aggregate;
pub mod format;
pub mod json;
pub mod table;
