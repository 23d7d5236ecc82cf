//! Writes every fuzz target's seeds into `DIR/TARGET/` (`scripts/fuzz` seeds `fuzz/corpus`
//! with it): `cargo run -p kiln-fuzz-targets --example seeds -- DIR`.

#[path = "../tests/seeds/mod.rs"]
mod seeds;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "fuzz/corpus".into());
    for (name, _) in kiln_fuzz_targets::TARGETS {
        let target = dir.join(name);
        std::fs::create_dir_all(&target)?;
        for (seed, bytes) in seeds::seeds(name) {
            std::fs::write(target.join(format!("seed-{seed}")), bytes)?;
        }
    }
    Ok(())
}
