//! CSV as RFC 4180 writes it: reading records (with the line each starts on, for
//! error messages) and writing cells.

/// A record: the line it starts on, and its fields.
pub type Record = (usize, Vec<String>);

/// RFC 4180 records with the line each starts on: quoted fields may hold commas,
/// doubled quotes and line breaks; CRLF or LF; blank lines are skipped.
pub fn records(text: &str) -> Result<Vec<Record>, (usize, &'static str)> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err((start, "A quoted field is not closed (a \" is missing)."));
                }
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push('\n');
                    }
                    c => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.is_empty() && !was_quoted => {
                    quoted = true;
                    was_quoted = true;
                }
                '"' => {
                    return Err((
                        line,
                        "A \" inside a field must be in a quoted field, doubled (\"\").",
                    ));
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    break;
                }
                c => {
                    if was_quoted {
                        return Err((
                            line,
                            "Text follows a closing quote; put the whole field in quotes.",
                        ));
                    }
                    field.push(c);
                }
            }
        }
        fields.push(field);
        let blank = fields.len() == 1 && fields[0].trim().is_empty();
        if !blank {
            records.push((start, fields));
        }
    }
    Ok(records)
}

/// A CSV cell: quoted when it holds a comma, quote or line break; a cell a spreadsheet
/// would run as a formula (`=`, `+`, `-`, `@`, tab, CR first) starts with `'`.
pub fn cell(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_may_hold_commas_quotes_and_line_breaks() {
        let text = "name,description\r\n\"a, b\",\"say \"\"hi\"\"\nthere\"\n\nc,d\n";
        let read = records(text).unwrap();
        assert_eq!(
            read,
            vec![
                (1, vec!["name".into(), "description".into()]),
                (2, vec!["a, b".into(), "say \"hi\"\nthere".into()]),
                (5, vec!["c".into(), "d".into()]),
            ]
        );
        assert!(records("a,\"b\n").is_err());
        assert!(records("a,b\"c\n").is_err());
    }

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(cell("-1,2"), "\"'-1,2\"");
    }
}
