//! Deals that change a CPQ Contract after its first sale.
//!
//! - [`change`]: what a deal is to its Contract (a first sale, an amendment, a renewal), read
//!   from the Opportunity, never from `Order.Type` (admins can edit it; lifecycle reference §1.1),
//!   and what each chain refuses.
//! - [`net`]: the Contract's billable state on a day, netted from every Order on it (the first
//!   sale's lines and each amendment's deltas), which the AB chain then sets on the Contract's one
//!   subscription: net, then set, so a replay sets the same totals and never adds twice.

//! - [`cancel`]: cancellations (the seed-001 stage, a CPQ amendment to zero): the target, what
//!   each system must do to reach it, and what the Opportunity is told.

pub mod cancel;
pub mod change;
pub mod net;
