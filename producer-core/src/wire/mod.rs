//! Sans-IO Kafka protocol codec (issue #3): being written.
