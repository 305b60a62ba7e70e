//! What every reader of an import file produces: rows as read, and problems by line.

/// One problem of the file: the line it is on (1 = the first line), which key of the
/// file it concerns (`item`, 1 = the first key; 0 = the file as a whole: compact JSON
/// has every key on line 1), the column or field (`file` for the file as a whole), and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowError {
    pub line: usize,
    pub item: usize,
    pub field: String,
    pub message: String,
}

impl RowError {
    pub fn new(line: usize, field: &str, message: impl Into<String>) -> Self {
        RowError {
            line,
            item: 0,
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The same problem, about the `item`th key of the file.
    pub fn at(mut self, item: usize) -> Self {
        self.item = item;
        self
    }
}

/// A row as read, before checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRow {
    pub line: usize,
    pub item: usize,
    pub name: String,
    pub description: String,
    pub expires_at: String,
    pub scopes: Vec<String>,
    pub cidrs: Vec<String>,
    pub sha256: Option<String>,
    pub sha512: Option<String>,
}

/// `a b,c` → `[a, b, c]`.
pub(super) fn split_list(cell: &str) -> Vec<String> {
    cell.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
