//! What the simulations of the whole client require of each record's outcome once a seed
//! settled: it is true of the model's log (`Persisted` is there, in the partition and at the
//! offset reported; `NotPersisted` is not; poison is never persisted), and the application's
//! deadline is honoured as the policy says. Each simulation first decides which records have
//! an outcome to check (the durable one: not those lost by design at a power cut).

use producer_core::state::{Outcome, PossiblyPersistedReason, UnknownOutcome};
use producer_core::time::Instant;

/// Record `uid`'s outcome (with the offset reported) against where the log has it (`in_log`:
/// partition and offset, from `Cluster::placed`); `partition` is where the client said it
/// went.
pub fn true_of_log(
    uid: u32,
    outcome: Outcome,
    offset: Option<i64>,
    partition: Option<i32>,
    poison: bool,
    in_log: Option<&(usize, i64)>,
) -> Result<(), String> {
    if let (Some(&(p, _)), Some(expected)) = (in_log, partition)
        && p as i32 != expected
    {
        return Err(format!("record {uid} landed in {p}, reported {expected}"));
    }
    match outcome {
        Outcome::Persisted { .. } => {
            let Some(&(_, log_offset)) = in_log else {
                return Err(format!("record {uid} reported persisted, not in the log"));
            };
            if let Some(o) = offset
                && o != log_offset
            {
                return Err(format!(
                    "record {uid}: offset {o}, the log has {log_offset}"
                ));
            }
        }
        Outcome::NotPersisted(_) if in_log.is_some() => {
            return Err(format!(
                "record {uid} reported not persisted but is in the log"
            ));
        }
        // At most once: `Cluster::placed` finds no record in the log twice.
        _ => {}
    }
    if poison && matches!(outcome, Outcome::Persisted { .. }) {
        return Err(format!("poison record {uid} persisted"));
    }
    Ok(())
}

/// Record `uid`'s outcome, handed out `at`, honours the application: under `FailAndFence`
/// by `limit` (its deadline or cancel) where that binds the client (`None` where not), and
/// under `Wait` never by giving up an unknown batch at a deadline.
pub fn deadline_honoured(
    uid: u32,
    policy: UnknownOutcome,
    outcome: Outcome,
    at: Instant,
    limit: Option<Instant>,
) -> Result<(), String> {
    if let Some(limit) = limit
        && policy == UnknownOutcome::FailAndFence
        && at > limit
    {
        return Err(format!(
            "record {uid}: outcome at {at:?} after its deadline {limit:?}"
        ));
    }
    if policy == UnknownOutcome::Wait
        && matches!(
            outcome,
            Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
        )
    {
        return Err(format!(
            "record {uid}: a deadline gave up an unknown batch under Wait"
        ));
    }
    Ok(())
}
