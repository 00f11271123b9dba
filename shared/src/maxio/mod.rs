//! Maxio Advanced Billing: the client, the pricing maths, the deal preparation and the chain of
//! worker steps.

pub mod ab;
pub mod prepare;
pub mod pricing;
pub mod steps;
pub mod worker;
