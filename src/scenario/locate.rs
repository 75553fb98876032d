//! Where each field of a YAML document is: a map from field paths
//! (`steps[0].probes[1].expect.status`) to line and column, built from the parser's
//! events. Problems found after deserializing can then name the exact spot.

use std::collections::HashMap;
use std::fmt;

use serde_saphyr::granit_parser::{Event, Parser};

/// 1-based line and column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    key: Option<Position>,
    value: Position,
}

/// Field positions of one YAML document.
#[derive(Clone, Debug, Default)]
pub struct Locations {
    entries: HashMap<String, Entry>,
}

enum Frame {
    Mapping {
        path: String,
        key: Option<(String, Position)>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// What the index of one file may hold, in bytes of paths plus [`ENTRY_BYTES`] a field.
/// Each path repeats its ancestors' keys, so a long key above many fields (or deep
/// nesting) would make a 1 MiB file's index gigabytes; a 1 MiB manifest written as
/// usual needs about a tenth of this. Past it the rest of the file is not indexed, and
/// its problems point at the nearest indexed ancestor. Aliases are not followed: an
/// alias is one node here, however much it expands to.
const MAX_INDEX_BYTES: usize = 32 << 20;
const ENTRY_BYTES: usize = 64;

impl Locations {
    /// Indexes every document of `text`; a document the parser rejects is indexed up to
    /// the error (the deserializer reports the error itself).
    pub fn of_documents(text: &str) -> Vec<Locations> {
        let mut documents = Vec::new();
        let mut current = Locations::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut indexed = 0usize;
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            if indexed > MAX_INDEX_BYTES {
                documents.push(current);
                return documents;
            }
            let at = Position {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::DocumentStart(..) => {
                    current = Locations::default();
                    stack.clear();
                    current.entries.insert(
                        String::new(),
                        Entry {
                            key: None,
                            value: at,
                        },
                    );
                }
                Event::DocumentEnd => documents.push(std::mem::take(&mut current)),
                Event::Scalar(value, ..) => {
                    let is_key = matches!(stack.last(), Some(Frame::Mapping { key: None, .. }));
                    if is_key {
                        if let Some(Frame::Mapping { key, .. }) = stack.last_mut() {
                            *key = Some((value.to_string(), at));
                        }
                    } else {
                        current.node(&mut stack, at, &mut indexed);
                    }
                }
                Event::Alias(..) => {
                    current.node(&mut stack, at, &mut indexed);
                }
                Event::MappingStart(..) => {
                    let path = current.node(&mut stack, at, &mut indexed);
                    stack.push(Frame::Mapping { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = current.node(&mut stack, at, &mut indexed);
                    stack.push(Frame::Sequence { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        documents
    }

    /// Records a value node at `at` under the frame on top; returns its path.
    fn node(&mut self, stack: &mut [Frame], at: Position, indexed: &mut usize) -> String {
        let (path, key) = match stack.last_mut() {
            None => (String::new(), None),
            Some(Frame::Mapping { path, key }) => match key.take() {
                Some((name, key_at)) => (join(path, &name), Some(key_at)),
                None => (path.clone(), None), // a complex key: not indexed
            },
            Some(Frame::Sequence { path, next }) => {
                *next += 1;
                (format!("{path}[{}]", *next - 1), None)
            }
        };
        *indexed += path.len() + ENTRY_BYTES;
        self.entries.insert(path.clone(), Entry { key, value: at });
        path
    }

    /// The position of `path`: its key if it has one, else its value; for a path that
    /// is not in the document (a missing field), the nearest ancestor that is.
    pub fn find(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(entry) = self.entries.get(path) {
                return entry.key.unwrap_or(entry.value);
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None if !path.is_empty() => path = "",
                None => return Position { line: 1, column: 1 },
            }
        }
    }

    /// Whether `path` is in the document itself (not only an ancestor of it).
    pub fn has(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    /// The first of `candidates` the document has, else the last one.
    pub fn first_of(&self, candidates: &[String]) -> String {
        candidates
            .iter()
            .find(|c| self.has(c))
            .or(candidates.last())
            .cloned()
            .unwrap_or_default()
    }

    /// The path of the field whose key or value starts at `at` (the deepest one).
    pub fn path_at(&self, at: Position) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(_, e)| e.value == at || e.key == Some(at))
            .map(|(path, _)| path.as_str())
            .max_by_key(|path| path.len())
    }
}

impl Locations {
    /// The path of the node (not key) that starts at `at`: for a mapping, the mapping.
    pub fn value_path_at(&self, at: Position) -> Option<&str> {
        self.entries
            .iter()
            .filter(|(_, e)| e.value == at)
            .map(|(path, _)| path.as_str())
            .max_by_key(|path| path.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "id: '01'\nsteps:\n  - id: a\n    probes:\n      - id: p\n        expect:\n          status: 200\n  - id: b\n";

    #[test]
    fn fields_are_found_at_their_keys() {
        let docs = Locations::of_documents(LAB);
        let loc = &docs[0];
        assert_eq!(loc.find("id"), Position { line: 1, column: 1 });
        assert_eq!(
            loc.find("steps[0].probes[0].expect.status"),
            Position {
                line: 7,
                column: 11
            }
        );
        assert_eq!(loc.find("steps[1].id"), Position { line: 8, column: 5 });
    }

    #[test]
    fn a_missing_field_points_at_its_nearest_ancestor() {
        let loc = &Locations::of_documents(LAB)[0];
        assert_eq!(loc.find("steps[1].name"), loc.find("steps[1]"));
        assert_eq!(
            loc.find("steps[0].probes[0].expect.reason"),
            Position { line: 6, column: 9 }
        );
    }

    #[test]
    fn a_value_position_maps_back_to_its_field() {
        let loc = &Locations::of_documents(LAB)[0];
        assert_eq!(
            loc.path_at(Position {
                line: 7,
                column: 19
            }),
            Some("steps[0].probes[0].expect.status")
        );
    }

    /// Each path repeats the long key above it: 400 fields under a 200 KB key would
    /// take 80 MB; the index stops at its limit instead.
    #[test]
    fn a_long_key_above_many_fields_does_not_blow_the_index_up() {
        let fields: Vec<String> = (0..400).map(|i| format!("f{i}: 1")).collect();
        let text = format!(
            "first: 1\n? {}\n: {{{}}}\n",
            "k".repeat(200_000),
            fields.join(", ")
        );
        let docs = Locations::of_documents(&text);
        let bytes: usize = docs[0].entries.keys().map(|p| p.len() + ENTRY_BYTES).sum();
        assert!(bytes <= MAX_INDEX_BYTES + 300_000, "{bytes}");
        assert!(docs[0].entries.len() < 200, "{}", docs[0].entries.len());
        assert_eq!(docs[0].find("first"), Position { line: 1, column: 1 });
    }

    #[test]
    fn every_document_of_a_stream_is_indexed() {
        let docs = Locations::of_documents("kind: A\n---\nkind: B\nmetadata:\n  name: x\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1].find("metadata.name"),
            Position { line: 5, column: 3 }
        );
    }
}
