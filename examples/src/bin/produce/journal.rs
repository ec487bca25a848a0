//! The tool's journals in `--state-dir`: which outcome each line got, and which line each
//! record of a durable batch is, so that a restart reports every line once and truly.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use transport_std::BatchToken;

#[derive(Clone, Copy)]
pub(crate) struct Fate {
    pub(crate) outcome: &'static str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

pub(crate) fn outcome_name(name: &str) -> Option<&'static str> {
    ["persisted", "not-persisted", "possibly-persisted"]
        .into_iter()
        .find(|n| *n == name)
}

/// The tool's own journals in the state directory. Both are append-only text, written to the
/// file (not just buffered) before the producer is called again, because the producer may
/// make the matching batch durable, or forget a handed-out outcome, in that call.
pub(crate) struct Journal {
    pub(crate) outcomes: BufWriter<File>,
    pub(crate) lines: BufWriter<File>,
    pub(crate) dirty: bool,
}

/// What the journals held at startup.
#[derive(Default)]
pub(crate) struct Recovered {
    /// Line index -> its outcome, as first handed out.
    pub(crate) fates: HashMap<usize, Fate>,
    /// (batch tag, offset in batch) -> line index, where it is not tag + offset.
    pub(crate) places: HashMap<(u64, u32), usize>,
}

impl Journal {
    pub(crate) fn open(dir: &Path) -> Result<(Journal, Recovered), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut recovered = Recovered::default();
        let outcomes_path = dir.join("outcomes");
        let lines_path = dir.join("lines");
        for (path, is_outcomes) in [(&outcomes_path, true), (&lines_path, false)] {
            let Ok(file) = File::open(path) else { continue };
            for line in BufReader::new(file).lines() {
                let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
                let fields: Vec<&str> = line.split(' ').collect();
                // A line cut by a crash is incomplete: ignore it (it was not acted on).
                if is_outcomes {
                    if let [index, outcome, partition, offset] = fields[..]
                        && let (Ok(index), Some(outcome), Ok(partition), Ok(offset)) = (
                            index.parse(),
                            outcome_name(outcome),
                            partition.parse(),
                            offset.parse(),
                        )
                    {
                        recovered.fates.entry(index).or_insert(Fate {
                            outcome,
                            partition,
                            offset,
                        });
                    }
                } else if let [tag, delta, index] = fields[..]
                    && let (Ok(tag), Ok(delta), Ok(index)) =
                        (tag.parse(), delta.parse(), index.parse())
                {
                    recovered.places.insert((tag, delta), index);
                }
            }
        }
        let append = |path: &Path| -> Result<BufWriter<File>, String> {
            // Finish a line a crash may have cut, so the next entry starts clean.
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.write_all(b"\n")
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(BufWriter::new(file))
        };
        Ok((
            Journal {
                outcomes: append(&outcomes_path)?,
                lines: append(&lines_path)?,
                dirty: false,
            },
            recovered,
        ))
    }

    pub(crate) fn place(&mut self, tag: u64, delta: u32, index: usize) -> Result<(), String> {
        self.dirty = true;
        writeln!(self.lines, "{tag} {delta} {index}").map_err(|e| format!("state: {e}"))
    }

    pub(crate) fn outcome(&mut self, index: usize, fate: &Fate) -> Result<(), String> {
        self.dirty = true;
        writeln!(
            self.outcomes,
            "{index} {} {} {}",
            fate.outcome, fate.partition, fate.offset
        )
        .map_err(|e| format!("state: {e}"))
    }

    /// Hands what is buffered to the file before the producer runs again.
    pub(crate) fn sync(&mut self) -> Result<(), String> {
        if self.dirty {
            self.lines.flush().map_err(|e| format!("state: {e}"))?;
            self.outcomes.flush().map_err(|e| format!("state: {e}"))?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Which line each record of a batch is: `tag + delta` unless the journal says otherwise.
pub(crate) struct Places {
    /// Tag of each batch still open to records, by token.
    pub(crate) open: HashMap<BatchToken, u64>,
    pub(crate) places: HashMap<(u64, u32), usize>,
}

impl Places {
    pub(crate) fn line(&self, tag: u64, delta: u32) -> usize {
        self.places
            .get(&(tag, delta))
            .copied()
            .unwrap_or((tag + u64::from(delta)) as usize)
    }
}
