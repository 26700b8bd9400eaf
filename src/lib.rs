//! tenantctl: a GitOps reconciler for fleets of tenant databases.
//!
//! Data flows one way: [`repo`] (the declared state in git) → [`model`]
//! (engine-neutral schemas) → [`engine`] (introspect live databases, build
//! declared models, render SQL) → [`diff`] (ordered changes with hazards) →
//! [`plan`] (steps, grouped reports) → [`reconcile`] (targets, concurrency,
//! apply) → [`cli`]. See ARCHITECTURE.md.

pub mod cli;
pub mod diagnostic;
pub mod diff;
pub mod engine;
pub mod model;
pub mod names;
pub mod plan;
pub mod reconcile;
pub mod repo;
pub mod sql;
pub mod tenants;
