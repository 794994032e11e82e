//! Built-in filters. (Skeleton, filled by the scheduler work.)
