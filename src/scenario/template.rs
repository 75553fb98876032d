//! What a lab's explanation template may use. It is rendered alone (`Tera::one_off`)
//! with what the run observed: it must not reach files or the environment. Tera 2 has
//! no built-in function that does (Tera 1's `get_env` and Zola's `load_data` are gone,
//! and kubelab registers none), and a template can only `include` or `extends`
//! templates of its Tera instance, where it is the only one. The check here names
//! such a use at its line and column instead of Tera's "unknown template".

use super::locate::Position;

/// Tags that bring in another template. `block` only means something with `extends`,
/// and rendering refuses it.
const OTHER_TEMPLATES: &[&str] = &["include", "extends", "import", "block", "macro"];

/// Functions that read files or the environment in Tera 1 or Zola: refused by name,
/// so a lab written for those says why, and a future Tera that brings one back still
/// cannot be used by a lab.
const READERS: &[(&str, &str)] = &[
    ("get_env", "reads the environment"),
    ("load_data", "reads files"),
    ("get_image_metadata", "reads files"),
];

/// The template's first problem: a tag or function that reaches outside the run, or a
/// syntax error.
pub fn check(name: &str, text: &str) -> Result<(), (Position, String)> {
    if let Some((at, tag)) = first_tag(text, OTHER_TEMPLATES) {
        return Err((
            at,
            format!(
                "`{tag}` cannot be used: a lab's template is rendered alone, without other templates or files"
            ),
        ));
    }
    if let Some((at, function, does)) = first_reader(text) {
        return Err((
            at,
            format!(
                "`{function}` cannot be used: it {does}, and a lab's template sees only what the run observed"
            ),
        ));
    }
    let mut tera = tera::Tera::default();
    tera.add_raw_template(name, text).map_err(|e| {
        let (at, message) = tera_problem(&crate::report::error_chain(&e));
        (at, format!("template does not parse: {message}"))
    })
}

/// The first `{% tag %}` among `tags`, outside comments, raw blocks and strings.
fn first_tag(text: &str, tags: &[&str]) -> Option<(Position, String)> {
    for tag in Tags::new(text) {
        if tag.is_block {
            let (start, word) = first_word(tag.body);
            if tags.contains(&word) {
                return Some((tag.position(text, start), word.to_string()));
            }
        }
    }
    None
}

/// The first call of a function of [`READERS`] inside `{{ }}` or `{% %}`, outside strings.
fn first_reader(text: &str) -> Option<(Position, &'static str, &'static str)> {
    for tag in Tags::new(text) {
        let body = tag.body;
        let (mut quote, mut word_start) = (None, None);
        for (i, c) in body
            .char_indices()
            .chain(std::iter::once((body.len(), ' ')))
        {
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                }
                continue;
            }
            if c.is_ascii_alphanumeric() || c == '_' {
                word_start.get_or_insert(i);
                continue;
            }
            if let Some(start) = word_start.take()
                && body[i..].trim_start().starts_with('(')
                && let Some((function, does)) = READERS.iter().find(|(f, _)| *f == &body[start..i])
            {
                return Some((tag.position(text, start), function, does));
            }
            if matches!(c, '"' | '\'' | '`') {
                quote = Some(c);
            }
        }
    }
    None
}

/// A tag's name (after `-` and spaces) and where in the body it starts.
fn first_word(body: &str) -> (usize, &str) {
    let trimmed = body.trim_start_matches('-').trim_start();
    let start = body.len() - trimmed.len();
    let end = trimmed
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(trimmed.len());
    (start, &trimmed[..end])
}

/// The inside of one `{{ }}` or `{% %}`.
struct Tag<'a> {
    is_block: bool,
    body: &'a str,
    /// Byte offset of `body` in the template.
    offset: usize,
}

impl Tag<'_> {
    /// The line and column of the body's byte `start`.
    fn position(&self, text: &str, start: usize) -> Position {
        let before = &text[..self.offset + start];
        let line = before.matches('\n').count() + 1;
        let column = before[before.rfind('\n').map_or(0, |n| n + 1)..]
            .chars()
            .count()
            + 1;
        Position { line, column }
    }
}

/// The tags of a template in order, skipping `{# comments #}` and `{% raw %}` blocks.
struct Tags<'a> {
    text: &'a str,
    at: usize,
    in_raw: bool,
}

impl<'a> Tags<'a> {
    fn new(text: &'a str) -> Self {
        Tags {
            text,
            at: 0,
            in_raw: false,
        }
    }
}

impl<'a> Iterator for Tags<'a> {
    type Item = Tag<'a>;

    fn next(&mut self) -> Option<Tag<'a>> {
        loop {
            let rest = &self.text[self.at..];
            let open = rest.find('{')?;
            let start = self.at + open;
            let kind = self.text[start + 1..].chars().next();
            self.at = start + 1;
            let close = match kind {
                Some('#') => "#}",
                Some('{') => "}}",
                Some('%') => "%}",
                _ => continue,
            };
            let body_start = start + 2;
            let body_end = end_of_tag(self.text, body_start, close);
            self.at = (body_end + close.len()).min(self.text.len());
            if kind == Some('#') {
                continue;
            }
            let body = &self.text[body_start..body_end];
            let (_, word) = first_word(body);
            if self.in_raw {
                self.in_raw = !(kind == Some('%') && word == "endraw");
                continue;
            }
            if kind == Some('%') && word == "raw" {
                self.in_raw = true;
                continue;
            }
            return Some(Tag {
                is_block: kind == Some('%'),
                body,
                offset: body_start,
            });
        }
    }
}

/// Where a tag's body ends: at `close` outside strings, or at the end of the text.
fn end_of_tag(text: &str, from: usize, close: &str) -> usize {
    let mut quote = None;
    for (i, c) in text[from..].char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            None if text[from + i..].starts_with(close) => return from + i,
            None => {}
        }
    }
    text.len()
}

/// Tera reports "error: <message>\n --> name:line:col\n<snippet>": keep the message
/// and the position.
fn tera_problem(rendered: &str) -> (Position, String) {
    let message = rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .trim()
        .to_string();
    let position = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|place| {
            let mut parts = place.rsplitn(3, ':');
            let column = parts.next()?.trim().parse().ok()?;
            let line = parts.next()?.trim().parse().ok()?;
            Some(Position { line, column })
        })
        .unwrap_or(Position { line: 1, column: 1 });
    (position, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> String {
        match check("explain.md.tera", text) {
            Ok(()) => "ok".to_string(),
            Err((at, message)) => format!("{at}: {message}"),
        }
    }

    #[test]
    fn the_built_in_templates_pass() {
        assert_eq!(
            problem("# {{ lab.title }}\n{% for s in steps %}{{ s }}{% endfor %}"),
            "ok"
        );
        assert_eq!(problem("{% raw %}{% include \"x\" %}{% endraw %}"), "ok");
        assert_eq!(
            problem("{# {% include \"x\" %} #}{{ \"{% include 'x' %}\" }}"),
            "ok"
        );
    }

    #[test]
    fn other_templates_cannot_be_brought_in() {
        assert_eq!(
            problem("a\n  {%- include \"explain.md.tera\" %}"),
            "2:7: `include` cannot be used: a lab's template is rendered alone, without other templates or files"
        );
        assert!(problem("{% extends \"/etc/passwd\" %}").starts_with("1:4: `extends`"));
        assert!(problem("{% block x %}{% endblock %}").starts_with("1:4: `block`"));
    }

    #[test]
    fn functions_that_read_files_or_the_environment_are_refused_by_name() {
        assert_eq!(
            problem("é {{ get_env (name=\"HOME\") }}"),
            "1:6: `get_env` cannot be used: it reads the environment, and a lab's template sees only what the run observed"
        );
        assert!(
            problem("{% set x = load_data(path='/etc/passwd') %}").starts_with("1:12: `load_data`")
        );
        // A variable of that name is no call.
        assert_eq!(problem("{{ get_env }}"), "ok");
    }

    /// The engine itself knows no such function, so rendering (which does not go
    /// through this check) cannot call one either.
    #[test]
    fn the_engine_has_no_function_that_reads_files_or_the_environment() {
        for (function, _) in READERS {
            let template = format!("{{{{ {function}(name=\"HOME\", path=\"/etc/passwd\") }}}}");
            let rendered = tera::Tera::one_off(&template, &tera::Context::new(), false);
            let error = crate::report::error_chain(&rendered.unwrap_err());
            assert!(error.contains("Unknown function"), "{function}: {error}");
        }
    }
}
