//! What went wrong, the one way every step says it: a stable [`ErrorCode`] and a sentence,
//! written to Salesforce and the ledger as `CODE: message`.

use std::fmt;

use serde::Serialize;

use crate::codes::ErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: String,
}

impl Failure {
    pub fn new(code: ErrorCode, message: impl fmt::Display) -> Failure {
        Failure {
            code,
            message: message.to_string(),
        }
    }

    /// Several problems as one failure: the first one's code, every problem said
    /// (`CODE: message; CODE: message`).
    pub fn of_all<'a>(problems: impl IntoIterator<Item = (ErrorCode, &'a str)>) -> Failure {
        let mut problems = problems.into_iter();
        let Some((code, first)) = problems.next() else {
            return Failure::new(ErrorCode::DealbridgeInternal, "no problem was given");
        };
        let mut message = first.to_string();
        for (code, text) in problems {
            message.push_str(&format!("; {code}: {text}"));
        }
        Failure { code, message }
    }

    /// The same failure with `more` said after it.
    pub fn and(&self, more: impl fmt::Display) -> Failure {
        Failure {
            code: self.code,
            message: format!("{}; {more}", self.message),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// How a step's work failed, before it is told to the queue ([`crate::runner::Handled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFailure {
    /// Trying again cannot help until someone fixes the data or the configuration.
    Permanent(Failure),
    /// A passing failure (throttling, an outage, a record not visible yet): try again.
    Transient(Failure),
    /// What the step needs does not exist yet (Maxio Core not synced): wait, then try again.
    NotYet(Failure),
    /// Needs a person to decide: said on the record, and the message ends in the dead-letter
    /// queue.
    Conflict(Failure),
}

impl StepFailure {
    pub fn permanent(code: ErrorCode, message: impl fmt::Display) -> StepFailure {
        StepFailure::Permanent(Failure::new(code, message))
    }

    pub fn transient(code: ErrorCode, message: impl fmt::Display) -> StepFailure {
        StepFailure::Transient(Failure::new(code, message))
    }

    /// Maxio Core has not synced what the link needs yet.
    pub fn not_yet(message: impl fmt::Display) -> StepFailure {
        StepFailure::NotYet(Failure::new(ErrorCode::CoreNotSynced, message))
    }

    /// The sentence shown while waiting: the message alone for "not yet", `CODE: message`
    /// otherwise.
    pub fn describe(&self) -> String {
        match self {
            StepFailure::NotYet(f) => f.message.clone(),
            other => other.failure().to_string(),
        }
    }

    pub fn failure(&self) -> &Failure {
        match self {
            StepFailure::Permanent(f)
            | StepFailure::Transient(f)
            | StepFailure::NotYet(f)
            | StepFailure::Conflict(f) => f,
        }
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, StepFailure::Permanent(_))
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.failure().fmt(f)
    }
}
