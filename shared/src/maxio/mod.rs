//! Maxio Advanced Billing and Maxio Core: the clients, the pricing maths, the deal preparation,
//! the chain of worker steps and the link of the AB subscription to the Core contract.

pub mod ab;
pub mod allocation;
mod cancel_step;
pub mod converge;
pub mod core;
pub mod core_link;
pub mod facts;
pub mod link;
pub mod options;
pub mod prepare;
pub mod pricing;
pub mod settings;
pub mod sites;
pub mod steps;
