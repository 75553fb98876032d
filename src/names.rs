//! Names close to a mistyped one: for "did you mean" and for telling which object a
//! person meant.

/// Levenshtein distance between two names.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The known name nearest to `wanted`, if it is within two edits.
pub fn closest<'a, S: AsRef<str>>(wanted: &str, known: &'a [S]) -> Option<&'a S> {
    known
        .iter()
        .map(|k| (edit_distance(wanted, k.as_ref()), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_its_nearest_name() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        let known = ["serviceaccounts", "secrets"];
        assert_eq!(closest("serviceacounts", &known), Some(&"serviceaccounts"));
        assert_eq!(closest("widgets", &known), None);
    }
}
