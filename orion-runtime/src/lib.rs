//! orion-runtime (skeleton; see the issues that fill it).
