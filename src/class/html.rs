//! The instructor's page: one self-contained HTML file (no network, no files beside
//! it). A table of students by labs that sorts by any column when its header is
//! clicked, and below it each student's failing checks with their diagnoses.

use super::grade::GradeBook;

use crate::report::html::escape;

const STYLE: &str = r#"
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em; color: #1d1d1f; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccd; padding: .3em .7em; text-align: right; }
th { background: #eef; cursor: pointer; user-select: none; }
th.sorted-asc::after { content: " ▲"; } th.sorted-desc::after { content: " ▼"; }
td.student, th.student { text-align: left; }
td.full { background: #dfd; } td.partial { background: #ffd; } td.zero { background: #fdd; }
td.none { color: #888; }
section.student { margin-top: 1.5em; }
.check { margin: .4em 0 .8em 1em; } .check h4 { margin: 0; }
pre { background: #f6f6f8; padding: .5em; white-space: pre-wrap; margin: .2em 0; }
"#;

const SCRIPT: &str = r#"
document.querySelectorAll('#grades th').forEach((th, column) => {
  th.addEventListener('click', () => {
    const body = document.querySelector('#grades tbody');
    const rows = Array.from(body.rows);
    const ascending = !th.classList.contains('sorted-asc');
    document.querySelectorAll('#grades th').forEach(h => h.classList.remove('sorted-asc', 'sorted-desc'));
    th.classList.add(ascending ? 'sorted-asc' : 'sorted-desc');
    const key = row => row.cells[column].dataset.sort;
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      const nx = parseFloat(x), ny = parseFloat(y);
      const order = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return ascending ? order : -order;
    });
    rows.forEach(row => body.appendChild(row));
  });
});
// A link may carry its order: grades.html#sort=total-desc, #sort=lab-02-asc.
const wanted = /^#sort=(.+)-(asc|desc)$/.exec(location.hash);
if (wanted) {
  const th = document.querySelector(`#grades th[data-key="${wanted[1]}"]`);
  if (th) { th.click(); if (wanted[2] === 'desc') th.click(); }
}
"#;

pub fn page(book: &GradeBook) -> String {
    let mut head = String::from("<tr><th class=\"student\" data-key=\"student\">student</th>");
    for lab in &book.labs {
        head.push_str(&format!(
            "<th data-key=\"lab-{id}\" title=\"{}\">lab {id}</th>",
            escape(&lab.title),
            id = escape(&lab.id)
        ));
    }
    head.push_str("<th data-key=\"total\">total</th></tr>");
    let mut rows = String::new();
    let mut details = String::new();
    for row in &book.students {
        let student = escape(&row.student);
        rows.push_str(&format!(
            "<tr><td class=\"student\" data-sort=\"{student}\"><a href=\"#{student}\">{student}</a></td>"
        ));
        let mut failing = String::new();
        for (cell, lab) in row.labs.iter().zip(&book.labs) {
            let class = match (&cell.grade, cell.started) {
                (Some(g), true) if g.points == g.max_points => "full",
                (Some(g), true) if g.points > 0 => "partial",
                (Some(_), true) => "zero",
                _ => "none",
            };
            let sort = if cell.started {
                cell.points() as i64
            } else {
                -1
            };
            rows.push_str(&format!(
                "<td class=\"{class}\" data-sort=\"{sort}\">{}</td>",
                escape(&cell.short())
            ));
            for (title, lines) in cell.failing().iter().filter(|_| cell.started) {
                failing.push_str(&format!(
                    "<div class=\"check\"><h4>lab {} · ✗ {}</h4><pre>{}</pre></div>",
                    escape(&lab.id),
                    escape(title),
                    escape(&lines.join("\n"))
                ));
            }
        }
        rows.push_str(&format!(
            "<td data-sort=\"{}\">{}/{}</td></tr>\n",
            row.points, row.points, row.max_points
        ));
        if failing.is_empty() {
            failing.push_str("<p>No failing check in the labs started.</p>");
        }
        details.push_str(&format!(
            "<section class=\"student\" id=\"{student}\"><h3>{student}: {}/{} points</h3>{failing}</section>\n",
            row.points, row.max_points
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kubelab class {class}: grades</title><style>{STYLE}</style></head>\n<body><h1>Class {class}: grades</h1>\n<p>{students} students, {labs} labs. Click a column to sort; – is a lab not started.</p>\n<table id=\"grades\"><thead>{head}</thead><tbody>\n{rows}</tbody></table>\n<h2>What is still wrong</h2>\n{details}<script>{SCRIPT}</script></body></html>\n",
        class = escape(&book.class),
        students = book.students.len(),
        labs = book.labs.len(),
    )
}
