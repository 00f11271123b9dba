//! Salesforce record Ids: validation, the 18-character checksum, and 15 → 18 conversion.
//!
//! A 15-character Id is case-sensitive base-62; the API returns 18-character Ids whose last three
//! characters encode the case of the first fifteen. Every Id that reaches a SOQL query or a URL goes
//! through [`SfId::parse`], so nothing unvalidated is ever interpolated.

use std::fmt;
use std::str::FromStr;

const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Why a string is not a Salesforce Id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("a Salesforce Id has 15 or 18 characters, got {0}")]
    Length(usize),
    #[error("a Salesforce Id contains only letters and digits, found {0:?}")]
    Character(char),
    #[error("the checksum of Salesforce Id {id} is wrong: expected suffix {expected}")]
    Checksum { id: String, expected: String },
}

/// A validated Salesforce record Id, always held in its 18-character form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SfId(String);

impl SfId {
    /// Validates `raw` (15 or 18 alphanumeric characters) and returns the canonical 18-character
    /// Id. An 18-character Id is case-insensitive, as Salesforce treats it: its suffix says which
    /// of the first fifteen characters are upper case, so the case is restored from it (a fully
    /// lower-case Id from a system that folds case names the same record). A suffix that marks a
    /// digit as upper case, or is not a checksum character, is refused.
    pub fn parse(raw: &str) -> Result<SfId, IdError> {
        let len = raw.chars().count();
        if len != 15 && len != 18 {
            return Err(IdError::Length(len));
        }
        if let Some(bad) = raw.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(IdError::Character(bad));
        }
        let base = if len == 18 {
            restore_case(&raw[..15], &raw[15..]).ok_or_else(|| IdError::Checksum {
                id: raw.to_string(),
                expected: checksum(&raw[..15]),
            })?
        } else {
            raw.to_string()
        };
        let suffix = checksum(&base);
        Ok(SfId(format!("{base}{suffix}")))
    }

    /// As [`SfId::parse`], but an 18-character Id's first fifteen characters must already have
    /// the case its suffix gives them (the suffix's own case does not matter). What the sandbox
    /// org does with the Ids it is sent: `reference/salesforce-whmcs.md` A2.4 observed
    /// `MALFORMED_ID` for a checksum that does not match. dealbridge itself never sends such an
    /// Id: it sends the canonical form [`SfId::parse`] gives.
    pub fn parse_exact(raw: &str) -> Result<SfId, IdError> {
        let id = SfId::parse(raw)?;
        if raw.len() == 18 && raw[..15] != id.0[..15] {
            return Err(IdError::Checksum {
                id: raw.to_string(),
                expected: checksum(&raw[..15]),
            });
        }
        Ok(id)
    }

    /// The 18-character form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-sensitive 15-character form.
    pub fn to_15(&self) -> &str {
        &self.0[..15]
    }

    /// The three-character key prefix naming the object type (`001` Account, `006` Opportunity,
    /// `801` Order, ...).
    pub fn key_prefix(&self) -> &str {
        &self.0[..3]
    }

    /// True when both Ids name the same record.
    pub fn same_record(&self, other: &SfId) -> bool {
        self.to_15() == other.to_15()
    }
}

/// The three-character checksum suffix for a 15-character Id. The caller guarantees `base` is 15
/// ASCII characters.
fn checksum(base: &str) -> String {
    base.as_bytes()
        .chunks(5)
        .map(|chunk| {
            let bits = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            char::from(CHECKSUM_ALPHABET[bits])
        })
        .collect()
}

/// The first fifteen characters with the case the checksum `suffix` gives them, or `None` when
/// the suffix does not fit them. The caller guarantees ASCII alphanumerics.
fn restore_case(base: &str, suffix: &str) -> Option<String> {
    let mut out = String::with_capacity(15);
    for (chunk, s) in base.as_bytes().chunks(5).zip(suffix.bytes()) {
        let s = s.to_ascii_uppercase();
        let bits = CHECKSUM_ALPHABET.iter().position(|c| *c == s)?;
        for (i, c) in chunk.iter().enumerate() {
            let upper = bits & (1 << i) != 0;
            if upper && !c.is_ascii_alphabetic() {
                return None;
            }
            out.push(char::from(if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }));
        }
        // Bits beyond the chunk's length cannot be set for a real Id.
        if bits >> chunk.len() != 0 {
            return None;
        }
    }
    Some(out)
}

impl FromStr for SfId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SfId::parse(s)
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SfId({})", self.0)
    }
}

impl AsRef<str> for SfId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for SfId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        SfId::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn converts_the_documented_examples_from_15_to_18() {
        assert_eq!(
            SfId::parse("500x000000003TR").unwrap().as_str(),
            "500x000000003TRAAY"
        );
        assert_eq!(
            SfId::parse("001A000010khO8J").unwrap().as_str(),
            "001A000010khO8JIAU"
        );
    }

    #[test]
    fn accepts_an_18_character_id_whose_suffix_differs_only_in_case() {
        let id = SfId::parse("001A000010khO8Jiau").unwrap();
        assert_eq!(id.as_str(), "001A000010khO8JIAU");
        assert_eq!(id.to_15(), "001A000010khO8J");
        assert_eq!(id.key_prefix(), "001");
    }

    #[test]
    fn rejects_a_suffix_that_does_not_fit_its_id() {
        // `B` marks the first character, a digit, as upper case.
        let err = SfId::parse("001A000010khO8JBAU").unwrap_err();
        assert_eq!(
            err,
            IdError::Checksum {
                id: "001A000010khO8JBAU".into(),
                expected: "IAU".into()
            }
        );
        assert!(
            SfId::parse("001A000010khO8J9AU").is_err(),
            "9 is no checksum character"
        );
    }

    #[test]
    fn an_18_character_id_is_case_insensitive_its_suffix_restores_the_case() {
        let id = SfId::parse("001a000010kho8jiau").unwrap();
        assert_eq!(id.as_str(), "001A000010khO8JIAU");
        let id = SfId::parse("001A000010KHO8JIAU").unwrap();
        assert_eq!(id.as_str(), "001A000010khO8JIAU");
        // The suffix decides: all lower case is another record.
        assert_eq!(
            SfId::parse("001A000010khO8JAAA").unwrap().as_str(),
            "001a000010kho8jAAA"
        );
        // The sandbox org's reading: the case must already fit the suffix.
        assert!(SfId::parse_exact("001A000010khO8JAAA").is_err());
        assert!(SfId::parse_exact("001a000010kho8jaaa").is_ok());
        assert!(SfId::parse_exact("001A000010khO8Jiau").is_ok());
        assert!(SfId::parse_exact("001a000010kho8jiau").is_err());
    }

    #[test]
    fn rejects_wrong_lengths_and_characters() {
        assert_eq!(SfId::parse("").unwrap_err(), IdError::Length(0));
        assert_eq!(
            SfId::parse("001A000010khO8").unwrap_err(),
            IdError::Length(14)
        );
        assert_eq!(
            SfId::parse("001A000010khO8JIA").unwrap_err(),
            IdError::Length(17)
        );
        assert_eq!(
            SfId::parse("001A000010kh'8J").unwrap_err(),
            IdError::Character('\'')
        );
        assert_eq!(
            SfId::parse("001' OR Id != '").unwrap_err(),
            IdError::Character('\'')
        );
        assert_eq!(
            SfId::parse("001A00001 khO8J").unwrap_err(),
            IdError::Character(' ')
        );
        assert!(matches!(
            SfId::parse("001A000010khO8é").unwrap_err(),
            IdError::Character('é')
        ));
    }

    #[test]
    fn deserializes_only_valid_ids() {
        let ok: SfId = serde_json::from_str("\"500x000000003TR\"").unwrap();
        assert_eq!(ok.as_str(), "500x000000003TRAAY");
        assert!(serde_json::from_str::<SfId>("\"500x000000003TRBAY\"").is_err());
    }

    proptest! {
        #[test]
        fn every_15_character_id_round_trips_through_its_18_character_form(
            base in "[A-Za-z0-9]{15}"
        ) {
            let id = SfId::parse(&base).unwrap();
            prop_assert_eq!(id.to_15(), base.as_str());
            let again = SfId::parse(id.as_str()).unwrap();
            prop_assert_eq!(&again, &id);
            let lower = id.as_str()[..15].to_string() + &id.as_str()[15..].to_lowercase();
            prop_assert_eq!(SfId::parse(&lower).unwrap(), id);
        }

        #[test]
        fn the_case_of_an_18_character_id_does_not_matter(
            base in "[A-Za-z0-9]{15}", pos in 0usize..18
        ) {
            let id = SfId::parse(&base).unwrap();
            let mut chars: Vec<char> = id.as_str().chars().collect();
            chars[pos] = if chars[pos].is_ascii_uppercase() {
                chars[pos].to_ascii_lowercase()
            } else {
                chars[pos].to_ascii_uppercase()
            };
            let flipped: String = chars.into_iter().collect();
            prop_assert_eq!(SfId::parse(&flipped).unwrap(), id.clone());
            prop_assert_eq!(SfId::parse(&id.as_str().to_lowercase()).unwrap(), id.clone());
            prop_assert_eq!(SfId::parse(&id.as_str().to_uppercase()).unwrap(), id);
        }

        #[test]
        fn another_checksum_character_is_refused_or_names_another_record(
            base in "[A-Za-z0-9]{15}", pos in 15usize..18, replacement in "[A-Za-z0-9]"
        ) {
            let id = SfId::parse(&base).unwrap();
            let short = SfId::parse(id.to_15()).unwrap();
            prop_assert!(short.same_record(&id));
            prop_assert_eq!(&short, &id);
            let mut chars: Vec<char> = id.as_str().chars().collect();
            let replacement = replacement.chars().next().unwrap();
            prop_assume!(!chars[pos].eq_ignore_ascii_case(&replacement));
            chars[pos] = replacement;
            let forged: String = chars.into_iter().collect();
            match SfId::parse(&forged) {
                Err(e) => {
                    let checksum = matches!(e, IdError::Checksum { .. });
                    prop_assert!(checksum, "{}", e);
                }
                Ok(other) => {
                    prop_assert!(!other.same_record(&id));
                    prop_assert_eq!(&other.as_str()[15..], forged[15..].to_uppercase());
                    prop_assert!(other.to_15().eq_ignore_ascii_case(&forged[..15]));
                }
            }
        }

        #[test]
        fn anything_outside_the_alphabet_is_rejected(s in "\\PC{0,30}") {
            if let Ok(id) = SfId::parse(&s) {
                prop_assert!(s.len() == 15 || s.len() == 18);
                prop_assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
                if s.len() == 15 {
                    prop_assert_eq!(id.to_15(), s.as_str());
                } else {
                    prop_assert!(id.as_str().eq_ignore_ascii_case(&s));
                }
            }
        }
    }
}
