//! `community.*`: the forum's moderation and counting settings, and their validation. The
//! words are checked here only for shape; `community::moderation` folds them for matching.

use serde::{Deserialize, Serialize};

/// `community.*`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Community {
    /// Words a post or comment may not contain: matched on folded text (full/half width,
    /// case, spaces or punctuation slipped between the characters); the refusal names none.
    pub blocked_words: Vec<String>,
    /// Posts a user may publish per hour (across every instance); 0 = unlimited.
    pub posts_per_hour: u32,
    /// Comments a user may write per hour (across every instance); 0 = unlimited.
    pub comments_per_hour: u32,
    /// Seconds a user must wait between two posts or comments; 0 = no wait.
    pub min_interval_secs: u32,
    /// Seconds between two writes of the view counts an instance gathered in memory: what a
    /// crash of that instance may lose.
    pub views_flush_secs: u64,
}

impl Default for Community {
    fn default() -> Self {
        Community {
            blocked_words: Vec::new(),
            posts_per_hour: 20,
            comments_per_hour: 120,
            min_interval_secs: 5,
            views_flush_secs: 5,
        }
    }
}

/// Longest blocked word, in characters.
pub const MAX_WORD: usize = 50;
/// Most blocked words.
pub const MAX_WORDS: usize = 10_000;

/// Reports each rule `c` breaks through `bad(key, problem, fix)`.
pub fn validate(c: &Community, bad: &mut impl FnMut(&'static str, String, &str)) {
    if c.blocked_words.len() > MAX_WORDS {
        bad(
            "community.blocked_words",
            format!("{} words; at most {MAX_WORDS}", c.blocked_words.len()),
            "keep the list to the words that matter",
        );
    }
    for word in &c.blocked_words {
        let letters = word.chars().filter(|ch| ch.is_alphanumeric()).count();
        if letters == 0 || word.chars().count() > MAX_WORD {
            bad(
                "community.blocked_words",
                format!("{word:?} is not a word of 1 to {MAX_WORD} characters with a letter or digit"),
                "list words like [\"赌博\", \"spam\"]; spaces and punctuation inside are ignored",
            );
        }
    }
    if !(1..=300).contains(&c.views_flush_secs) {
        bad(
            "community.views_flush_secs",
            format!("{} is outside 1..=300", c.views_flush_secs),
            "set e.g. 5 (a crash loses at most that many seconds of views)",
        );
    }
    if c.min_interval_secs > 3600 {
        bad(
            "community.min_interval_secs",
            format!("{} is above 3600", c.min_interval_secs),
            "set e.g. 5, or 0 for no wait",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_without_letters_and_bad_intervals_are_refused() {
        let mut problems = Vec::new();
        let mut bad = |key: &'static str, problem: String, _: &str| problems.push((key, problem));
        validate(&Community::default(), &mut bad);
        assert!(problems.is_empty());
        let c = Community {
            blocked_words: vec!["赌博".into(), " ,. ".into(), "x".repeat(51)],
            views_flush_secs: 0,
            ..Community::default()
        };
        let mut problems = Vec::new();
        let mut bad = |key: &'static str, problem: String, _: &str| problems.push((key, problem));
        validate(&c, &mut bad);
        let keys: Vec<_> = problems.iter().map(|p| p.0).collect();
        assert_eq!(
            keys,
            [
                "community.blocked_words",
                "community.blocked_words",
                "community.views_flush_secs"
            ]
        );
    }
}
