//! SKELETON — to be implemented. RSA2 signing of requests, verification of answers and
//! notifications.
