//! A planned step: one change rendered as the statements that make it.
//! It lives with the changes, below the engines that render it, so engines
//! never depend on `plan` (reports).

use serde::{Deserialize, Serialize};

use super::{Change, Hazard, HazardKind};

/// One change of a tenant's plan, as the engine will run it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Step {
    /// What the step does, e.g. `add column orders.note TEXT`.
    pub description: String,
    pub hazards: Vec<Hazard>,
    /// Statements in execution order, without trailing `;`.
    pub statements: Vec<String>,
}

impl Step {
    /// A step for `change`, with the hazards its rules find.
    pub fn for_change(change: &Change, statements: Vec<String>) -> Self {
        Self {
            description: change.describe(),
            hazards: change.hazards(),
            statements,
        }
    }

    pub fn has(&self, kind: HazardKind) -> bool {
        self.hazards.iter().any(|h| h.kind == kind)
    }

    /// Adds a hazard unless the step already carries the same one.
    pub fn add_hazard(&mut self, hazard: Hazard) {
        if !self.hazards.contains(&hazard) {
            self.hazards.push(hazard);
        }
    }
}
