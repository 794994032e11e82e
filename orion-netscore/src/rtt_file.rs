//! The RTT matrix file: a square matrix of round-trip times in milliseconds, one row per line,
//! values separated by whitespace. Row `i`, column `j` is the RTT measured from node `i` to node
//! `j`. A value `<= 0` off the diagonal means "not measured"; the diagonal is ignored. Blank lines
//! and lines starting with `#` are skipped.
//!
//! Real-data quirks it takes: CRLF line ends, tabs, leading and trailing whitespace, a UTF-8 byte
//! order mark, asymmetric values (the two directions are averaged, see [`RttMatrix::rtt`]) and
//! missing entries. Values must be milliseconds, at most [`MAX_RTT_MS`]: a file in microseconds
//! (like the p2psim King matrix) trips that bound and must be divided by 1,000 first.
//!
//! ```
//! use orion_netscore::rtt_file::RttMatrix;
//!
//! let m = RttMatrix::parse("0 10 -1\n10 0 30\n-1 30 0\n").unwrap();
//! assert_eq!(m.len(), 3);
//! assert_eq!(m.rtt(0, 1), Some(10.0));
//! assert_eq!(m.rtt(0, 2), None);
//! ```

use crate::{Error, Result};

/// The most nodes a matrix may have (10,000 nodes is 10^8 values, 800 MB in memory).
pub const MAX_NODES: usize = 10_000;

/// The largest RTT accepted, in milliseconds (100 s). A file in microseconds trips this bound.
pub const MAX_RTT_MS: f64 = crate::vivaldi::MAX_RTT_MS;

/// A square matrix of measured RTTs in milliseconds, `0.0` where unmeasured.
///
/// Contract: every stored value is finite and in `[0, MAX_RTT_MS]`; the diagonal is `0.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct RttMatrix {
    size: usize,
    values: Vec<f64>,
}

impl RttMatrix {
    /// Parses the file format described in the [module docs](self).
    ///
    /// Errors name the line and the column (the 1-based position of the value on its line) and say
    /// what is accepted: a value that is not a number or not finite, above [`MAX_RTT_MS`], a row
    /// whose length differs from the first row's, more rows than columns or fewer, more than
    /// [`MAX_NODES`] columns, or no rows at all.
    pub fn parse(text: &str) -> Result<Self> {
        let mut size = None;
        let mut values = Vec::new();
        let mut rows = 0usize;
        let mut last_line = 0usize;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            last_line = line_number;
            let fields: Vec<&str> = trimmed.split_whitespace().collect();
            let n = match size {
                None => {
                    if fields.len() > MAX_NODES {
                        return Err(file_error(
                            line_number,
                            MAX_NODES + 1,
                            format!(
                                "the first row has {} values; at most {MAX_NODES} nodes are accepted",
                                fields.len()
                            ),
                        ));
                    }
                    values.reserve(fields.len() * fields.len());
                    size = Some(fields.len());
                    fields.len()
                }
                Some(n) => n,
            };
            if fields.len() != n {
                return Err(file_error(
                    line_number,
                    fields.len().min(n) + 1,
                    format!(
                        "this row has {} values but the first row has {n}; the matrix must be square",
                        fields.len()
                    ),
                ));
            }
            if rows == n {
                return Err(file_error(
                    line_number,
                    1,
                    format!("one row too many: the rows have {n} values, so {n} rows are expected"),
                ));
            }
            for (column, field) in fields.iter().enumerate() {
                let value = parse_value(field).map_err(|reason| {
                    file_error(line_number, column + 1, format!("`{field}`: {reason}"))
                })?;
                let measured = column != rows && value > 0.0;
                values.push(if measured { value } else { 0.0 });
            }
            rows += 1;
        }
        let Some(n) = size else {
            return Err(file_error(
                1,
                1,
                "no rows: expected a square matrix of milliseconds, one row per line".into(),
            ));
        };
        if rows < n {
            return Err(file_error(
                last_line + 1,
                1,
                format!(
                    "the rows have {n} values but there are only {rows} rows; the matrix must be square"
                ),
            ));
        }
        Ok(Self { size: n, values })
    }

    /// A matrix of `size` nodes whose RTT from `i` to `j` is `rtt(i, j)` (`<= 0` is unmeasured).
    /// Errors like [`RttMatrix::parse`] for a size above [`MAX_NODES`] or a bad value.
    pub fn from_fn(size: usize, mut rtt: impl FnMut(usize, usize) -> f64) -> Result<Self> {
        if size > MAX_NODES {
            return Err(Error::invalid(
                "rtt matrix",
                format!("{size} nodes; at most {MAX_NODES} are accepted"),
            ));
        }
        let mut values = Vec::with_capacity(size * size);
        for i in 0..size {
            for j in 0..size {
                let value = rtt(i, j);
                check_value(value).map_err(|reason| {
                    Error::invalid(
                        "rtt matrix",
                        format!("value at ({i}, {j}) = {value}: {reason}"),
                    )
                })?;
                values.push(if i != j && value > 0.0 { value } else { 0.0 });
            }
        }
        Ok(Self { size, values })
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.size
    }

    /// True for a matrix of no nodes.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The RTT measured from `from` to `to` as written, `None` when unmeasured or on the diagonal.
    /// Panics when an index is out of range.
    pub fn measured(&self, from: usize, to: usize) -> Option<f64> {
        assert!(from < self.size && to < self.size, "index out of range");
        let value = self.values[from * self.size + to];
        (value > 0.0).then_some(value)
    }

    /// The RTT between `a` and `b` in either direction: the mean of both directions when both are
    /// measured, else the one that is, else `None` (also for `a == b`).
    pub fn rtt(&self, a: usize, b: usize) -> Option<f64> {
        match (self.measured(a, b), self.measured(b, a)) {
            (Some(x), Some(y)) => Some((x + y) / 2.0),
            (one, other) => one.or(other),
        }
    }

    /// The matrix in the file format (unmeasured as `-1`), so generated data can be written out.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for i in 0..self.size {
            let row: Vec<String> = (0..self.size)
                .map(|j| match self.measured(i, j) {
                    Some(v) => format!("{v:.3}"),
                    None if i == j => "0".into(),
                    None => "-1".into(),
                })
                .collect();
            out.push_str(&row.join(" "));
            out.push('\n');
        }
        out
    }
}

fn parse_value(field: &str) -> std::result::Result<f64, String> {
    let value: f64 = field.parse().map_err(|_| {
        "not a number; accepted: milliseconds such as 12.5, or a value <= 0 for unmeasured"
            .to_string()
    })?;
    check_value(value)?;
    Ok(value)
}

fn check_value(value: f64) -> std::result::Result<(), String> {
    if !value.is_finite() {
        return Err("not finite; accepted: a finite number of milliseconds".into());
    }
    if value > MAX_RTT_MS {
        return Err(format!(
            "above the {MAX_RTT_MS} ms bound (values are milliseconds, not microseconds)"
        ));
    }
    Ok(())
}

fn file_error(line: usize, column: usize, reason: String) -> Error {
    Error::RttFile {
        line,
        column,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(text: &str) -> (usize, usize, String) {
        match RttMatrix::parse(text) {
            Err(Error::RttFile {
                line,
                column,
                reason,
            }) => (line, column, reason),
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn parses_comments_blank_lines_and_unmeasured() {
        let m = RttMatrix::parse("# king subset\n\n0 1.5 0\n2.5 0 -3\n  0 7 0  \n").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.measured(0, 1), Some(1.5));
        assert_eq!(m.measured(1, 0), Some(2.5));
        assert_eq!(m.rtt(0, 1), Some(2.0));
        assert_eq!(m.rtt(1, 2), Some(7.0), "one direction measured");
        assert_eq!(m.rtt(0, 2), None);
        assert_eq!(m.rtt(1, 1), None);
    }

    #[test]
    fn real_data_quirks_crlf_tabs_bom_asymmetry_and_outliers() {
        let text =
            "\u{feff}# from a real dump\r\n0\t12.5  80\t \r\n\t14.5 0 -1\r\n79000 0 0   \r\n";
        let m = RttMatrix::parse(text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(
            m.rtt(0, 1),
            Some(13.5),
            "asymmetric directions are averaged"
        );
        assert_eq!(m.measured(1, 2), None);
        assert_eq!(m.rtt(1, 2), None, "missing both ways");
        // A huge outlier within the bound is kept as measured (Vivaldi's error weighting copes).
        assert_eq!(m.measured(2, 0), Some(79_000.0));
    }

    #[test]
    fn diagonal_values_are_ignored() {
        let m = RttMatrix::parse("5 1\n1 9\n").unwrap();
        assert_eq!(m.measured(0, 0), None);
        assert_eq!(m.rtt(0, 1), Some(1.0));
    }

    #[test]
    fn errors_name_line_column_and_what_is_accepted() {
        let (line, column, reason) = error_of("0 1\n1 x\n");
        assert_eq!((line, column), (2, 2));
        assert!(
            reason.contains("`x`") && reason.contains("milliseconds"),
            "{reason}"
        );

        let (line, column, reason) = error_of("0 1\n1 NaN\n");
        assert_eq!((line, column), (2, 2));
        assert!(reason.contains("finite"), "{reason}");

        let (line, _, reason) = error_of("0 1 2\n1 0\n2 1 0\n");
        assert_eq!(line, 2);
        assert!(reason.contains("square"), "{reason}");

        let (line, _, reason) = error_of("0 1\n1 0\n1 1\n");
        assert_eq!(line, 3);
        assert!(reason.contains("too many"), "{reason}");

        let (line, _, reason) = error_of("0 1 2\n1 0 1\n");
        assert_eq!(line, 3);
        assert!(reason.contains("only 2 rows"), "{reason}");

        let (_, column, reason) = error_of("0 150000\n1 0\n");
        assert_eq!(column, 2);
        assert!(reason.contains("microseconds"), "{reason}");

        let (_, _, reason) = error_of("\n# nothing\n");
        assert!(reason.contains("no rows"), "{reason}");
    }

    #[test]
    fn too_many_nodes_is_refused() {
        let row = vec!["1"; MAX_NODES + 1].join(" ");
        let (_, _, reason) = error_of(&row);
        assert!(reason.contains("at most 10000"), "{reason}");
        assert!(RttMatrix::from_fn(MAX_NODES + 1, |_, _| 1.0).is_err());
    }

    #[test]
    fn text_round_trips() {
        let m = RttMatrix::from_fn(4, |i, j| {
            if (i + j) % 3 == 0 {
                -1.0
            } else {
                (i * 4 + j) as f64 + 0.25
            }
        })
        .unwrap();
        assert_eq!(RttMatrix::parse(&m.to_text()).unwrap(), m);
    }
}
