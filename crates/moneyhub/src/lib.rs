//! Async, typed client for Moneyhub's Open Finance API (in progress).
