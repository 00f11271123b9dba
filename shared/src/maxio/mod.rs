//! Maxio Advanced Billing and Maxio Core: the clients, the pricing maths, the deal preparation,
//! the chain of worker steps and the link of the AB subscription to the Core contract.

pub mod ab;
pub mod core;
pub mod core_link;
pub mod link;
pub mod prepare;
pub mod pricing;
pub mod settings;
pub mod steps;
