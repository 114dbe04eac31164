//! Moderation before anything is stored: the blocked words (`community.blocked_words`)
//! matched on folded text, behind [`Moderator`], the seam where a content-check service
//! (WeChat's `msgSecCheck` for text, `mediaCheckAsync` for images) plugs in as another
//! [`Step`]; and the per-user posting limits, counted in the database so that every instance
//! shares them.
//!
//! Folding: NFKC (full-width letters and digits become half-width, compatibility forms their
//! plain ones), lower case, and only letters and digits kept, so `赌 博`, `赌.博` and `ＳＰＡＭ`
//! all read as the listed word. A word in Latin letters must also start and end on a word
//! boundary of the text (`ass` is not found in `class`, but is in `a.s.s`); Chinese has no
//! spaces between words, so a Chinese word is found anywhere. Emoji and symbols are neither
//! words nor separators that could break one, so they never cause a refusal by themselves.

use aho_corasick::AhoCorasick;
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use unicode_normalization::UnicodeNormalization;

use crate::config::Community;
use crate::error::AppError;
use crate::store::StoreError;

/// Text folded for matching, with where its words start and end (by byte offset).
struct Folded {
    text: String,
    /// `starts[i]`: a character of the text starts at byte `i` and begins a word.
    starts: Vec<bool>,
    /// `ends[i]`: a character of the text ends at byte `i` and ends a word.
    ends: Vec<bool>,
}

/// Letters and digits of `text`, NFKC-normalised and lower-cased.
fn folded_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    text.nfkc().flat_map(char::to_lowercase)
}

fn fold(text: &str) -> Folded {
    let mut out = Folded {
        text: String::with_capacity(text.len()),
        starts: Vec::new(),
        ends: Vec::new(),
    };
    let mut previous_latin = false;
    let mut open_latin_end: Option<usize> = None;
    for c in folded_chars(text) {
        let latin = c.is_ascii_alphanumeric();
        if let Some(end) = open_latin_end.take() {
            // The last kept Latin character ends a word unless this one continues it.
            out.ends[end] = !latin;
        }
        if c.is_alphanumeric() {
            let at = out.text.len();
            out.text.push(c);
            let end = out.text.len();
            out.starts.resize(end + 1, false);
            out.ends.resize(end + 1, false);
            out.starts[at] = !(latin && previous_latin);
            out.ends[end] = true;
            if latin {
                open_latin_end = Some(end);
            }
        }
        // Punctuation and spaces separate Latin words; other symbols do too.
        previous_latin = latin;
    }
    out
}

/// A word folded the same way (its letters and digits only).
pub fn fold_word(word: &str) -> String {
    folded_chars(word).filter(|c| c.is_alphanumeric()).collect()
}

/// The blocked words, compiled once.
#[derive(Debug)]
pub struct BlockedWords {
    automaton: Option<AhoCorasick>,
    /// Per pattern: true for a Latin word (it must sit on word boundaries).
    latin: Vec<bool>,
}

impl BlockedWords {
    /// Compiles `words` (validated by the configuration: each has a letter or digit).
    pub fn new(words: &[String]) -> BlockedWords {
        let folded: Vec<String> = words.iter().map(|w| fold_word(w)).filter(|w| !w.is_empty()).collect();
        let latin = folded
            .iter()
            .map(|w| w.bytes().all(|b| b.is_ascii_alphanumeric()))
            .collect();
        let automaton = if folded.is_empty() {
            None
        } else {
            AhoCorasick::new(&folded).ok()
        };
        BlockedWords { automaton, latin }
    }

    /// True when `text` contains a blocked word (see the module comment).
    pub fn matches(&self, text: &str) -> bool {
        let Some(automaton) = &self.automaton else {
            return false;
        };
        let folded = fold(text);
        automaton
            .find_overlapping_iter(&folded.text)
            .any(|m| !self.latin[m.pattern().as_usize()] || (folded.starts[m.start()] && folded.ends[m.end()]))
    }
}

/// One check of the moderation chain.
#[derive(Debug)]
pub enum Step {
    /// `community.blocked_words`.
    BlockedWords(BlockedWords),
    // A content-check service goes here: its `check` arm sends the text (and image ids) to
    // the service and refuses on its word; one that answers later hides the stored post
    // with `hidden_reason = 'review'` instead.
}

/// What is checked before a post or comment is stored.
pub struct Moderator {
    steps: Vec<Step>,
}

impl std::fmt::Debug for Moderator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moderator").field("steps", &self.steps.len()).finish()
    }
}

impl Moderator {
    pub fn new(settings: &Community) -> Moderator {
        Moderator {
            steps: vec![Step::BlockedWords(BlockedWords::new(&settings.blocked_words))],
        }
    }

    /// Passes `texts` (a title and content, or a comment) and `images`, or refuses them with
    /// `422 blocked_content`, which names no word.
    pub async fn check(&self, texts: &[&str], images: &[String]) -> Result<(), AppError> {
        let _ = images;
        for step in &self.steps {
            let refused = match step {
                Step::BlockedWords(words) => texts.iter().any(|t| words.matches(t)),
            };
            if refused {
                return Err(AppError::invalid(
                    "blocked_content",
                    "the text contains words that are not allowed here",
                ));
            }
        }
        Ok(())
    }
}

/// What a user is about to write, for the rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Post,
    Comment,
}

const RATE_POST: &str = "SELECT now(),
        (SELECT created_at FROM posts WHERE author_id = $1 ORDER BY created_at DESC OFFSET $2 LIMIT 1),
        greatest((SELECT max(created_at) FROM posts WHERE author_id = $1),
                 (SELECT max(created_at) FROM comments WHERE author_id = $1))
   FROM users WHERE id = $1 FOR NO KEY UPDATE";
const RATE_COMMENT: &str = "SELECT now(),
        (SELECT created_at FROM comments WHERE author_id = $1 ORDER BY created_at DESC OFFSET $2 LIMIT 1),
        greatest((SELECT max(created_at) FROM posts WHERE author_id = $1),
                 (SELECT max(created_at) FROM comments WHERE author_id = $1))
   FROM users WHERE id = $1 FOR NO KEY UPDATE";

/// Refuses (429) a write of `user_id` beyond `community.posts_per_hour` /
/// `comments_per_hour` or sooner than `min_interval_secs` after their last one. Locks the
/// user's row for the rest of the caller's transaction, so two writes at once are counted
/// one after the other.
pub async fn check_rate(
    client: &impl GenericClient,
    settings: &Community,
    user_id: i64,
    write: Write,
) -> Result<(), AppError> {
    let (sql, cap) = match write {
        Write::Post => (RATE_POST, settings.posts_per_hour),
        Write::Comment => (RATE_COMMENT, settings.comments_per_hour),
    };
    let offset = if cap == 0 { i64::MAX } else { i64::from(cap) - 1 };
    let statement = client.prepare_cached(sql).await.map_err(StoreError::from)?;
    let row = client
        .query_opt(&statement, &[&user_id, &offset])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::Unauthorized)?;
    let now: OffsetDateTime = row.get(0);
    let nth: Option<OffsetDateTime> = row.get(1);
    let last: Option<OffsetDateTime> = row.get(2);
    let hour = time::Duration::hours(1);
    let interval = time::Duration::seconds(i64::from(settings.min_interval_secs));
    let wait = [
        nth.filter(|_| cap > 0).map(|at| at + hour - now),
        last.filter(|_| settings.min_interval_secs > 0)
            .map(|at| at + interval - now),
    ]
    .into_iter()
    .flatten()
    .filter(|left| left.is_positive())
    .max();
    match wait {
        Some(left) => Err(AppError::RateLimited {
            retry_after_secs: u64::try_from(left.whole_seconds()).unwrap_or(0) + 1,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> BlockedWords {
        BlockedWords::new(&list.iter().map(|w| w.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn a_chinese_word_is_found_through_widths_spaces_and_punctuation() {
        let blocked = words(&["赌博", "SPAM"]);
        for text in [
            "网上赌博平台",
            "网上赌 博平台",
            "网上赌.博",
            "赌-_-博",
            "赌\u{3000}博",
            "buy ＳＰＡＭ now",
            "S p a m",
            "s.p.a.m!",
        ] {
            assert!(blocked.matches(text), "{text}");
        }
        for text in ["赌一把博物馆", "spammer", "antispam", "今天天气很好", "🎲🎰 好运", ""] {
            assert!(!blocked.matches(text), "{text}");
        }
    }

    #[test]
    fn latin_words_keep_to_word_boundaries() {
        let blocked = words(&["ass"]);
        assert!(!blocked.matches("a classic class"));
        assert!(blocked.matches("you a.s.s"));
        assert!(blocked.matches("ASS!"));
        assert!(blocked.matches("中文ass中文"), "CJK next to it is a boundary");
    }

    #[test]
    fn an_empty_list_blocks_nothing() {
        assert!(!words(&[]).matches("anything"));
        assert_eq!(fold_word("Ｆｏｏ－Ｂａｒ"), "foobar");
    }

    #[tokio::test]
    async fn the_refusal_names_no_word() {
        let settings = Community {
            blocked_words: vec!["秘密词".into()],
            ..Community::default()
        };
        let moderator = Moderator::new(&settings);
        assert!(moderator.check(&["标题", "正文"], &[]).await.is_ok());
        let err = moderator.check(&["标题", "这是秘 密 词"], &[]).await.unwrap_err();
        assert_eq!(err.code(), "blocked_content");
        assert!(!err.to_string().contains("秘密词"));
    }
}
