//! Product search, the pure part: the text a product is searched by and what a query asks
//! for. Both go through [`normalize`] (lower case, full-width forms folded, whitespace
//! collapsed), so `ＤＲＥＳＳ`, `Dress` and `dress` meet. The database keeps every single
//! character and character pair of a product's text in a GIN index (migration 0016); a query
//! word needs all of its pairs (a one-character word: the character) and is then checked as
//! a substring, which works for Chinese without word breaking and for words of one or two
//! characters.

/// Longest query, in characters.
pub const MAX_QUERY: usize = 50;

/// Most words a query may have.
pub const MAX_TERMS: usize = 8;

/// `text` lower-cased, full-width ASCII forms and the ideographic space folded to ASCII,
/// runs of whitespace made one space (a newline stays a newline), trimmed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending_space: Option<char> = None;
    for c in text.chars() {
        let c = match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            other => other,
        };
        if c.is_whitespace() {
            // A newline wins over spaces: it keeps the name and the description apart.
            if pending_space != Some('\n') {
                pending_space = Some(if c == '\n' { '\n' } else { ' ' });
            }
            continue;
        }
        if let Some(space) = pending_space.take()
            && !out.is_empty()
        {
            out.push(space);
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// What a product is searched by: its name and description, normalized, a newline apart.
pub fn search_text(name: &str, description: &str) -> String {
    let name = normalize(name).replace('\n', " ");
    let description = normalize(description);
    if description.is_empty() {
        name
    } else {
        format!("{name}\n{description}")
    }
}

/// A parsed query: its words, and the index keys every match must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Each must occur in the product's text.
    pub terms: Vec<String>,
    /// Single characters (one-character words) and character pairs of the words, deduplicated.
    pub grams: Vec<String>,
}

/// Why a query was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    TooLong,
    TooManyWords,
}

/// The query `q`; `None` when it has no words (then nothing is filtered).
pub fn parse_query(q: &str) -> Result<Option<Query>, QueryError> {
    if q.chars().count() > MAX_QUERY {
        return Err(QueryError::TooLong);
    }
    let normalized = normalize(q);
    let mut terms: Vec<String> = Vec::new();
    for word in normalized.split_whitespace() {
        if !terms.iter().any(|t| t == word) {
            terms.push(word.to_string());
        }
    }
    if terms.is_empty() {
        return Ok(None);
    }
    if terms.len() > MAX_TERMS {
        return Err(QueryError::TooManyWords);
    }
    let mut grams: Vec<String> = Vec::new();
    for term in &terms {
        let chars: Vec<char> = term.chars().collect();
        let found: Vec<String> = if chars.len() == 1 {
            vec![chars[0].to_string()]
        } else {
            chars.windows(2).map(|pair| pair.iter().collect()).collect()
        };
        for gram in found {
            if !grams.contains(&gram) {
                grams.push(gram);
            }
        }
    }
    Ok(Some(Query { terms, grams }))
}

/// A canonical form of the query for cache keys: its words, space-separated.
pub fn cache_form(query: &Option<Query>) -> String {
    query.as_ref().map_or(String::new(), |q| q.terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_folds_case_width_and_spaces() {
        assert_eq!(normalize("  ＤＲＥＳＳ\u{3000}红色  Dress "), "dress 红色 dress");
        assert_eq!(normalize("Ａ１２３"), "a123");
        assert_eq!(normalize("一行\n\n  二行"), "一行\n二行");
        assert_eq!(normalize(""), "");
        assert_eq!(search_text("连衣裙 \n 夏季", "纯棉\n透气"), "连衣裙 夏季\n纯棉\n透气");
        assert_eq!(search_text("Mug", ""), "mug");
    }

    #[test]
    fn a_query_asks_for_the_pairs_of_each_word_and_the_character_of_a_single_one() {
        let q = parse_query("红色 连衣裙").unwrap().unwrap();
        assert_eq!(q.terms, ["红色", "连衣裙"]);
        assert_eq!(q.grams, ["红色", "连衣", "衣裙"]);
        let one = parse_query("裙").unwrap().unwrap();
        assert_eq!(one.grams, ["裙"]);
        let two = parse_query(" Ｔ恤 ").unwrap().unwrap();
        assert_eq!(two.terms, ["t恤"]);
        assert_eq!(two.grams, ["t恤"]);
        let repeated = parse_query("aa aa aaa").unwrap().unwrap();
        assert_eq!(repeated.terms, ["aa", "aaa"]);
        assert_eq!(repeated.grams, ["aa"]);
        assert_eq!(parse_query("   ").unwrap(), None);
        assert_eq!(parse_query(&"字".repeat(51)), Err(QueryError::TooLong));
        assert_eq!(parse_query("a b c d e f g h i"), Err(QueryError::TooManyWords));
        assert_eq!(cache_form(&parse_query(" B  a ").unwrap()), "b a");
    }
}
