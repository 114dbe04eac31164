//! Search of titles and content, Chinese included. The embedded cluster runs in the C locale,
//! where `pg_trgm` sees only ASCII letters and digits as word characters (it makes no trigram
//! of Chinese text at all), and trigrams could not find a two-character word anyway. So each
//! post also carries `grams`: the codes of every character and of every pair of neighbouring
//! characters of its folded text, in a GIN index:
//!
//! - a one- or two-character query is one code, and the index answers it exactly;
//! - a longer query needs every pair of its characters; the few posts that have them all
//!   but not side by side are dropped by `strpos` on the folded text;
//! - a query of ASCII letters and digits of three or more is answered by the `pg_trgm` index
//!   on the same folded text (trigrams are far more selective than pairs in Latin script).
//!
//! Folding: NFKC, lower case, runs of white space as one space, control characters dropped —
//! the same for the text stored and for the query, so `ＡＢＣ` finds `abc`.

use unicode_normalization::UnicodeNormalization;

use crate::error::AppError;

/// Longest query, in characters.
pub const MAX_QUERY: usize = 50;

/// `text` folded for search (see the module comment).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.nfkc().flat_map(char::to_lowercase) {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else if !c.is_control() {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// The stored search text of a post: its folded title and content on two lines (a query
/// never holds a line break, so no match spans the two).
pub fn document(title: &str, content: &str) -> String {
    format!("{}\n{}", fold(title), fold(content))
}

/// The code of one character.
fn unigram(c: char) -> i64 {
    i64::from(u32::from(c))
}

/// The code of two neighbouring characters; never equal to a character's (the first
/// character is at least U+0020, so the code is at least 2^26).
fn bigram(a: char, b: char) -> i64 {
    (i64::from(u32::from(a)) << 21) | i64::from(u32::from(b))
}

fn countable(c: char) -> bool {
    !c.is_whitespace()
}

/// Every code of `folded` (a [`document`]): its characters and neighbouring pairs, white
/// space left out, sorted and without repeats.
pub fn grams(folded: &str) -> Vec<i64> {
    let mut out = Vec::with_capacity(folded.len());
    for line in folded.split('\n') {
        let mut previous: Option<char> = None;
        for c in line.chars() {
            if countable(c) {
                out.push(unigram(c));
                if let Some(p) = previous {
                    out.push(bigram(p, c));
                }
                previous = Some(c);
            } else {
                previous = None;
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// A parsed query, and how the index answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// The folded query (`strpos` / `LIKE` on the folded text).
    pub folded: String,
    pub plan: Plan,
}

/// Which index finds the posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The grams index; `exact` when its answer needs no look at the text.
    Grams { keys: Vec<i64>, exact: bool },
    /// The trigram index, with this `LIKE` pattern.
    Trigrams { pattern: String },
}

impl Query {
    /// `q` of 1..=[`MAX_QUERY`] characters once folded; `None` when empty.
    pub fn parse(q: &str) -> Result<Option<Query>, AppError> {
        let folded = fold(q);
        if folded.is_empty() {
            return Ok(None);
        }
        if folded.chars().count() > MAX_QUERY {
            return Err(AppError::invalid(
                "invalid_q",
                format!("q must be at most {MAX_QUERY} characters"),
            ));
        }
        let trigram_word = folded
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| word.len() >= 3);
        let plan = if folded.is_ascii() && trigram_word {
            Plan::Trigrams {
                pattern: format!("%{}%", like_escape(&folded)),
            }
        } else {
            let keys = grams(&folded);
            let pairs: Vec<i64> = keys.iter().copied().filter(|k| *k > 0x10FFFF).collect();
            let chars: Vec<char> = folded.chars().collect();
            let exact = chars.len() == 1 || (chars.len() == 2 && chars.iter().copied().all(countable));
            Plan::Grams {
                // Pairs alone imply the characters; a query without a pair keeps those.
                keys: if pairs.is_empty() { keys } else { pairs },
                exact,
            }
        };
        Ok(Some(Query { folded, plan }))
    }
}

/// `text` with `LIKE`'s wildcards and its escape character escaped.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_unifies_width_case_and_spaces() {
        assert_eq!(fold("  ＡＢＣ　今天\t\n 天气  "), "abc 今天 天气");
        assert_eq!(document("标题", "正\u{0}文"), "标题\n正文");
    }

    #[test]
    fn grams_hold_characters_and_neighbouring_pairs() {
        let g = grams(&document("天气", "今天 好"));
        let expect = {
            let mut v = vec![
                unigram('天'),
                unigram('气'),
                bigram('天', '气'),
                unigram('今'),
                bigram('今', '天'),
                unigram('好'),
            ];
            v.sort_unstable();
            v.dedup();
            v
        };
        assert_eq!(g, expect, "no pair across the space or the line break");
        assert!(bigram(' ', 'a') > 0x10FFFF);
    }

    #[test]
    fn short_queries_are_exact_on_the_grams_and_long_ascii_ones_use_trigrams() {
        let two = Query::parse("天气").unwrap().unwrap();
        assert_eq!(
            two.plan,
            Plan::Grams {
                keys: vec![bigram('天', '气')],
                exact: true
            }
        );
        let one = Query::parse("Ａ").unwrap().unwrap();
        assert_eq!(
            one.plan,
            Plan::Grams {
                keys: vec![unigram('a')],
                exact: true
            }
        );
        let long = Query::parse("今天天气").unwrap().unwrap();
        assert!(matches!(long.plan, Plan::Grams { exact: false, ref keys } if keys.len() == 3));
        let spaced = Query::parse("a b").unwrap().unwrap();
        assert!(matches!(spaced.plan, Plan::Grams { exact: false, ref keys } if keys.len() == 2));
        let latin = Query::parse("Hello_World").unwrap().unwrap();
        assert_eq!(
            latin.plan,
            Plan::Trigrams {
                pattern: "%hello\\_world%".into()
            }
        );
        assert!(matches!(
            Query::parse("ab").unwrap().unwrap().plan,
            Plan::Grams { exact: true, .. }
        ));
        assert_eq!(Query::parse("  ").unwrap(), None);
        assert_eq!(Query::parse(&"长".repeat(51)).unwrap_err().code(), "invalid_q");
    }
}
