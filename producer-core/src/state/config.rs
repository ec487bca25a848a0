//! The sequencer's settings, checked once at construction.

use core::fmt;
use core::time::Duration;

use super::eligibility::UnknownOutcome;
use crate::backoff::Backoff;

/// Kafka brokers keep the metadata of the last five batches per producer and partition;
/// more in flight and a retry could fall outside that window and be appended twice.
pub const MAX_IN_FLIGHT_LIMIT: u8 = 5;

/// How the sequencer behaves. `Default` gives the gateway defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config {
    /// What a deadline does to a batch whose fate is unknown.
    pub unknown_outcome: UnknownOutcome,
    /// Requests in flight per partition once the current epoch has had a success (1 until
    /// then, as franz-go learned in its issue 223: a first batch that fails must not leave four
    /// later ones to be rejected out of order). `1..=5`.
    pub max_in_flight_per_partition: u8,
    /// Wait before the first resend of a refused or lost batch; doubles per attempt, with
    /// jitter (see [`backoff`](crate::backoff)). The same rule paces InitProducerId retries,
    /// the sending after consecutive fences without progress, and metadata refreshes while
    /// the answers stay incomplete (librdkafka's `retry.backoff.ms`).
    pub retry_backoff: Duration,
    /// Upper bound of the doubling backoff (librdkafka's `retry.backoff.max.ms`): a broker
    /// that refuses forever gets at most about one resend, one epoch bump and one metadata
    /// request per this interval.
    pub retry_backoff_max: Duration,
    /// Seed of the jitter applied to every backoff. Devices that share a seed retry in step
    /// after a common failure, so a transport seeds it from something that differs between
    /// devices and runs (transport-std: the time and process id; a firmware: a hardware
    /// random number); the default is a fixed constant, and a simulation sets its own to
    /// replay exactly.
    pub jitter_seed: u64,
    /// After a request was abandoned (its connection closed unanswered), how long to wait
    /// before sending under a *new producer id*. Kafka goes on processing the requests it had
    /// read from a connection after the client closed it, one at a time, and each produce
    /// request may wait up to its timeout for the in-sync replicas: the last of five pipelined
    /// requests can be appended about four produce timeouts after the close. An epoch bump
    /// fences such a straggler on the broker (it refuses the old epoch once the new one wrote
    /// to the partition), but a new producer id does not, and the straggler could land after
    /// newer batches of its partition. So the default is five produce timeouts
    /// ([`MAX_REQUESTS_PER_CONNECTION`](crate::client::MAX_REQUESTS_PER_CONNECTION) times the
    /// client's request timeout, which is the produce timeout it sends): 50 s with the
    /// defaults. Only fences that need a new producer id wait; on Kafka nearly every fence is
    /// a local epoch bump. A broker known to drop what it read when a connection closes allows
    /// less. Zero disables the wait (order across a producer id change is then not protected).
    pub abandoned_request_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            unknown_outcome: UnknownOutcome::FailAndFence,
            max_in_flight_per_partition: MAX_IN_FLIGHT_LIMIT,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            // Five produce timeouts of the client's default 10 s.
            abandoned_request_grace: Duration::from_secs(50),
            jitter_seed: 0x5EED_0FBA_C0FF,
        }
    }
}

/// A configuration the sequencer refuses, and what to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// `max_in_flight_per_partition` is outside `1..=5`.
    MaxInFlight {
        /// The value given.
        given: u8,
    },
    /// `retry_backoff` is zero, which would resend in a busy loop.
    ZeroRetryBackoff,
    /// `retry_backoff_max` is below `retry_backoff`.
    BackoffMaxBelowBackoff,
    /// The partitions capacity is 0 or above 65,535.
    PartitionCapacity,
    /// The batches capacity is 0 or above 65,535.
    BatchCapacity,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MaxInFlight { given } => write!(
                f,
                "max in flight per partition is {given}: set it between 1 and {MAX_IN_FLIGHT_LIMIT} \
                 (brokers deduplicate only the last {MAX_IN_FLIGHT_LIMIT} batches)"
            ),
            ConfigError::ZeroRetryBackoff => {
                f.write_str("retry backoff is zero: set it to at least 1 ms (100 ms is usual)")
            }
            ConfigError::BackoffMaxBelowBackoff => f.write_str(
                "retry backoff max is below retry backoff: raise it to at least the backoff",
            ),
            ConfigError::PartitionCapacity => {
                f.write_str("the partitions capacity must be between 1 and 65535")
            }
            ConfigError::BatchCapacity => {
                f.write_str("the batches capacity must be between 1 and 65535")
            }
        }
    }
}

impl Config {
    pub(crate) fn validate(&self, partitions: usize, batches: usize) -> Result<(), ConfigError> {
        if !(1..=MAX_IN_FLIGHT_LIMIT).contains(&self.max_in_flight_per_partition) {
            return Err(ConfigError::MaxInFlight {
                given: self.max_in_flight_per_partition,
            });
        }
        if self.retry_backoff.is_zero() {
            return Err(ConfigError::ZeroRetryBackoff);
        }
        if self.retry_backoff_max < self.retry_backoff {
            return Err(ConfigError::BackoffMaxBelowBackoff);
        }
        if partitions == 0 || partitions > usize::from(u16::MAX) {
            return Err(ConfigError::PartitionCapacity);
        }
        if batches == 0 || batches > usize::from(u16::MAX) {
            return Err(ConfigError::BatchCapacity);
        }
        Ok(())
    }

    /// The retry rule: `retry_backoff` doubling up to `retry_backoff_max`.
    pub fn retry_rule(&self) -> Backoff {
        Backoff::new(self.retry_backoff, self.retry_backoff_max)
    }
}
