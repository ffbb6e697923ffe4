//! Human-readable tables that fit the terminal.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, Color, ContentArrangement, Table};

use super::aggregate::{Totals, Usage};
use super::format::{short_model, thousands, usd};
use crate::domain::TokenCounts;

/// Table styling for this run.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// Whether cells may be coloured (headers cyan, totals yellow).
    pub color: bool,
    /// Terminal width; narrow terminals drop the cache columns.
    pub width: u16,
}

impl Style {
    /// Whether the terminal is narrower than 110 columns, so the cache columns are dropped.
    pub fn compact(&self) -> bool {
        self.width < 110
    }
}

/// An empty table with `headers`: numeric columns right-aligned, sized to the style's width.
pub fn new_table(style: Style, headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(style.width);
    if !style.color {
        t.force_no_tty();
    } else {
        t.enforce_styling();
    }
    let cells: Vec<Cell> = headers
        .iter()
        .map(|h| {
            let c = Cell::new(h);
            if style.color { c.fg(Color::Cyan) } else { c }
        })
        .collect();
    t.set_header(cells);
    // Numbers right, words left.
    for (i, h) in headers.iter().enumerate().skip(1) {
        if let Some(col) = t.column_mut(i) {
            let words = matches!(*h, "Models" | "Duration/Status" | "Model");
            col.set_cell_alignment(if words {
                CellAlignment::Left
            } else {
                CellAlignment::Right
            });
        }
    }
    t
}

/// Headers for a usage table whose first column is `first`.
pub fn usage_headers(first: &'static str, style: Style) -> Vec<&'static str> {
    if style.compact() {
        vec![
            first,
            "Models",
            "Input",
            "Output",
            "Total Tokens",
            "Cost (USD)",
        ]
    } else {
        vec![
            first,
            "Models",
            "Input",
            "Output",
            "Cache Create",
            "Cache Read",
            "Total Tokens",
            "Cost (USD)",
        ]
    }
}

/// One usage row: `label`, the models used, the token columns and the cost in USD.
pub fn usage_cells(label: String, u: &Usage, style: Style) -> Vec<String> {
    let models = u
        .models_used
        .iter()
        .map(|m| format!("- {}", short_model(m)))
        .collect::<Vec<_>>()
        .join("\n");
    row_cells(label, models, &u.tokens, usd(u.cost), style)
}

/// One indented row per model under a usage row; unpriced models are marked `(no price)`.
pub fn breakdown_rows(u: &Usage, style: Style) -> Vec<Vec<String>> {
    u.breakdowns
        .iter()
        .map(|b| {
            let mark = if b.missing_pricing { " (no price)" } else { "" };
            let label = format!("  └─ {}", short_model(&b.model));
            row_cells(
                label,
                String::new(),
                &b.tokens,
                format!("{}{mark}", usd(b.cost)),
                style,
            )
        })
        .collect()
}

/// The `Total` row's cells, yellow when colour is on.
pub fn totals_cells(t: &Totals, style: Style) -> Vec<Cell> {
    row_cells("Total".into(), String::new(), &t.tokens, usd(t.cost), style)
        .into_iter()
        .map(|c| {
            let cell = Cell::new(c);
            if style.color {
                cell.fg(Color::Yellow)
            } else {
                cell
            }
        })
        .collect()
}

/// Label, models, the token columns the width allows, cost.
fn row_cells(
    label: String,
    models: String,
    t: &TokenCounts,
    cost: String,
    style: Style,
) -> Vec<String> {
    let mut cells = vec![
        label,
        models,
        thousands(t.input_tokens),
        thousands(t.output_tokens),
    ];
    if !style.compact() {
        cells.push(thousands(t.cache_creation_input_tokens));
        cells.push(thousands(t.cache_read_input_tokens));
    }
    cells.push(thousands(t.total()));
    cells.push(cost);
    cells
}
