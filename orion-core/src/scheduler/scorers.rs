//! Built-in scorers. (Skeleton, filled by the scheduler work.)
