//! The `produce` command-line tool (issue #4) and the gateway firmware (issue #5) will live here.
