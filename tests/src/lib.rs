//! Integration tests against real brokers (issue #4) will live here.
