//! Go's text/tabwriter (left-aligned, space padding, no flags): the column blocks of
//! docker's tables.
//!
//! A cell is text ended by a tab; the text after a line's last tab is not part of any
//! column. A column's width is set per block of consecutive lines that have a cell in
//! it: the widest cell plus `padding`, at least `minwidth`.

/// Formats `text` (lines of tab-terminated cells).
pub fn format(text: &str, minwidth: usize, padding: usize) -> String {
    let ends_with_newline = text.ends_with('\n');
    let body = text.strip_suffix('\n').unwrap_or(text);
    let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::new();
    let mut widths = Vec::new();
    format_block(&lines, 0, lines.len(), &mut widths, minwidth, padding, &mut out);
    if !ends_with_newline && out.ends_with('\n') {
        out.pop();
    }
    out
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for line in &lines[from..to] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < line.len() && j < widths.len() {
                let w = width(cell);
                if widths[j] > w {
                    out.push_str(&" ".repeat(widths[j] - w));
                }
            }
        }
        out.push('\n');
    }
}

/// Go's `Writer.format`: lines `line0..line1`, columns left of `widths.len()` decided.
fn format_block(
    lines: &[Vec<&str>],
    line0: usize,
    line1: usize,
    widths: &mut Vec<usize>,
    minwidth: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut start = line0;
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        // A block of lines with a cell in this column starts here.
        write_lines(lines, start, this, widths, out);
        start = this;
        let mut w = minwidth;
        while this < line1 && column + 1 < lines[this].len() {
            w = w.max(width(lines[this][column]) + padding);
            this += 1;
        }
        widths.push(w);
        format_block(lines, start, this, widths, minwidth, padding, out);
        widths.pop();
        start = this;
    }
    write_lines(lines, start, line1, widths, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_go() {
        assert_eq!(
            format("REPOSITORY\tTAG\tIMAGE ID\nrbuild-anchor/busybox\t1\tff5a01f5474a\n", 10, 3),
            "REPOSITORY              TAG       IMAGE ID\nrbuild-anchor/busybox   1         ff5a01f5474a\n"
        );
        // Lines without the column end its block.
        assert_eq!(format("a\tb\nno tabs\nccc\td\n", 1, 1), "a b\nno tabs\nccc d\n");
        assert_eq!(format("x\ty\n", 10, 3), "x         y\n");
    }
}
