//! The `produce` tool's binary for the suites that run it as a user would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Path of the `produce` binary, built once per test process with the profile and target
/// directory of the running test (`cargo build -p examples --bin produce`).
pub fn produce_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            // target/<profile>/deps/TEST-HASH -> target/<profile>/produce
            let exe = std::env::current_exe().expect("test executable path");
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>");
            let profile = match dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev".to_string(),
                Some(other) => other.to_string(),
            };
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "examples", "--bin", "produce", "--profile"])
                .arg(&profile)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("run cargo build");
            assert!(status.success(), "building produce failed");
            let binary = dir.join(format!("produce{}", std::env::consts::EXE_SUFFIX));
            assert!(binary.exists(), "{} missing", binary.display());
            binary
        })
        .clone()
}
