//! Records the optimisation level and profile the benchmark is built with, for the report.

fn main() {
    for var in ["OPT_LEVEL", "PROFILE"] {
        let value = std::env::var(var).unwrap_or_else(|_| "unknown".into());
        println!("cargo:rustc-env=BENCH_{var}={value}");
    }
    println!("cargo:rerun-if-env-changed=CARGO_PROFILE_RELEASE_OPT_LEVEL");
}
