//! orion-consensus (skeleton; see the issues that fill it).
