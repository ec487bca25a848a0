//! Programs built on the producer: the `produce` command-line tool (`src/bin/produce.rs`),
//! and with issue #5 the gateway firmware.
