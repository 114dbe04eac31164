//! SKELETON — to be implemented. Request signing and answer/notification verification.
