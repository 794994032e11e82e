//! orion-netscore (skeleton; see the issues that fill it).
