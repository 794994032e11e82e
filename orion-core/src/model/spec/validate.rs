//! Validation of a parsed spec: every problem, with its path, value and what is accepted.
//! (Skeleton: the spec work fills in every rule.)

use super::ServiceSpec;
use crate::error::ValidationErrors;

impl ServiceSpec {
    /// Checks every rule and reports all failures at once.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        if self.resources.cpu_millicores < 5 {
            errs.push(
                "resources.cpu_millicores",
                self.resources.cpu_millicores,
                "at least 5 millicores",
            );
        }
        errs.into_result()
    }
}
