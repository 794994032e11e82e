use serde::{Deserialize, Serialize};

/// An amount of compute: CPU in millicores (1000 = one core), memory and disk in bytes.
///
/// Used for a node's capacity and allocation and for a task's request. Arithmetic saturates, so
/// subtracting more than is there gives zero, never a wrap-around.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU in millicores: 500 is half a core.
    #[serde(default)]
    pub cpu_millicores: u64,
    /// Memory in bytes.
    #[serde(default)]
    pub memory_bytes: u64,
    /// Disk in bytes.
    #[serde(default)]
    pub disk_bytes: u64,
}

impl Resources {
    /// A request or capacity of `cpu_millicores` and `memory_bytes`, no disk.
    pub const fn new(cpu_millicores: u64, memory_bytes: u64) -> Self {
        Resources {
            cpu_millicores,
            memory_bytes,
            disk_bytes: 0,
        }
    }

    /// Component-wise sum, saturating.
    pub fn saturating_add(self, other: Resources) -> Resources {
        Resources {
            cpu_millicores: self.cpu_millicores.saturating_add(other.cpu_millicores),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            disk_bytes: self.disk_bytes.saturating_add(other.disk_bytes),
        }
    }

    /// Component-wise difference, saturating at zero.
    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu_millicores: self.cpu_millicores.saturating_sub(other.cpu_millicores),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            disk_bytes: self.disk_bytes.saturating_sub(other.disk_bytes),
        }
    }

    /// True when every component of `self` is at most the same component of `other`.
    pub fn fits_in(&self, other: &Resources) -> bool {
        self.cpu_millicores <= other.cpu_millicores
            && self.memory_bytes <= other.memory_bytes
            && self.disk_bytes <= other.disk_bytes
    }
}
