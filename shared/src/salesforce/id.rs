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
    /// Validates `raw` (15 or 18 alphanumeric characters; the checksum of an 18-character Id is
    /// verified, case-insensitively as Salesforce does) and returns the canonical 18-character Id.
    pub fn parse(raw: &str) -> Result<SfId, IdError> {
        let len = raw.chars().count();
        if len != 15 && len != 18 {
            return Err(IdError::Length(len));
        }
        if let Some(bad) = raw.chars().find(|c| !c.is_ascii_alphanumeric()) {
            return Err(IdError::Character(bad));
        }
        let base = &raw[..15];
        let suffix = checksum(base);
        if len == 18 {
            let given = &raw[15..];
            if !given.eq_ignore_ascii_case(&suffix) {
                return Err(IdError::Checksum {
                    id: raw.to_string(),
                    expected: suffix,
                });
            }
        }
        Ok(SfId(format!("{base}{suffix}")))
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
    fn rejects_a_wrong_checksum() {
        let err = SfId::parse("001A000010khO8JAAA").unwrap_err();
        assert_eq!(
            err,
            IdError::Checksum {
                id: "001A000010khO8JAAA".into(),
                expected: "IAU".into()
            }
        );
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
        assert!(serde_json::from_str::<SfId>("\"500x000000003TRAAA\"").is_err());
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
        fn changing_the_case_of_one_character_changes_the_checksum(
            base in "[A-Za-z]{15}", pos in 0usize..15
        ) {
            let id = SfId::parse(&base).unwrap();
            let mut flipped: Vec<char> = base.chars().collect();
            flipped[pos] = if flipped[pos].is_ascii_uppercase() {
                flipped[pos].to_ascii_lowercase()
            } else {
                flipped[pos].to_ascii_uppercase()
            };
            let flipped: String = flipped.into_iter().collect();
            let forged = format!("{}{}", flipped, &id.as_str()[15..]);
            prop_assert!(SfId::parse(&forged).is_err());
        }

        #[test]
        fn changing_any_checksum_character_of_an_18_character_id_is_rejected(
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
            let is_checksum_error = matches!(SfId::parse(&forged), Err(IdError::Checksum { .. }));
            prop_assert!(is_checksum_error, "{} accepted", forged);
        }

        #[test]
        fn anything_outside_the_alphabet_is_rejected(s in "\\PC{0,30}") {
            if let Ok(id) = SfId::parse(&s) {
                prop_assert!(s.len() == 15 || s.len() == 18);
                prop_assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
                prop_assert_eq!(id.to_15(), &s[..15]);
            }
        }
    }
}
