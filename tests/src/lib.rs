//! Shared harness for the integration tests: real brokers on loopback and an independent
//! consumer to read back what reached the log.
