//! How fast the example kernels compute under kiln against the same Rust compiled natively, in
//! the same run, on realistic inputs:
//!
//! - `kernel-csv-stats` `describe` on 10 MB of CSV (five columns: ids, cities, temperatures,
//!   rainfall with missing values, free text);
//! - `kernel-word-freq` `counts` on 10 MB of text over a 20,000-word vocabulary;
//! - `kernel-mandelbrot` `tile` of 1024×1024 points, up to 256 iterations each.
//!
//! Natively, each entry point runs through `kiln_kernel::testing` (the same function, input and
//! output buffer). Under kiln, it runs through `Runtime::call` from the module `cargo build
//! --release --target wasm32-wasip1` makes, precompiled and loaded as the executor loads it, with
//! fuel metering and epoch checks on. The two outputs are checked to be equal first.
//!
//! Whether SIMD helps: the same crate built with `-Ctarget-feature=+simd128` besides kiln's
//! flags (so that LLVM may vectorise loops and crates such as `memchr` take their wasm SIMD
//! paths), under kiln.
//!
//! Where the difference goes: the same module through raw wasmtime with kiln's engine settings,
//! then with NaN canonicalisation added (which kiln's engine had until it was measured here),
//! then without fuel metering (epoch checks kept), then without epoch checks too (these calls
//! drop the output; their status says they ran to the end).

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_executor::runtime::{Limits, Runtime};
use kiln_kernel::EntryFn;
use kiln_tests::kernels::{RawKernel, build_kernels, example_module, load_precompiled};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};

/// The size of the CSV and text inputs.
const INPUT_BYTES: usize = 10 << 20;

const LIMITS: Limits = Limits {
    fuel: u64::MAX / 2,
    memory_bytes: 1 << 30,
    wall_ms: 600_000,
    output_bytes: 64 << 20,
};

/// CSV with a header and rows until `INPUT_BYTES`.
fn csv_input(rng: &mut StdRng) -> Vec<u8> {
    const CITIES: [&str; 8] = [
        "Oslo",
        "Bergen",
        "Trondheim",
        "Tromsø",
        "Stavanger",
        "Bodø",
        "Ålesund",
        "Kristiansand",
    ];
    let mut csv = String::from("id,city,temp,rain,note\n");
    let mut id = 0u64;
    while csv.len() < INPUT_BYTES {
        id += 1;
        let city = CITIES[rng.random_range(0..CITIES.len())];
        let temp: f64 = rng.random_range(-25.0..32.0);
        let rain = if rng.random_bool(0.1) {
            "NA".to_owned()
        } else {
            format!("{:.1}", rng.random_range(0.0..40.0))
        };
        let note = if rng.random_bool(0.5) {
            "\"clear, calm\""
        } else {
            "overcast"
        };
        csv.push_str(&format!("{id},{city},{temp:.2},{rain},{note}\n"));
    }
    csv.into_bytes()
}

/// Text until `INPUT_BYTES`: words from a vocabulary of 20,000, drawn with a skew towards the
/// first ones, with punctuation and capitals now and then.
fn text_input(rng: &mut StdRng) -> Vec<u8> {
    let vocabulary: Vec<String> = (0..20_000)
        .map(|i| {
            let len = 2 + (i % 9);
            (0..len)
                .map(|k| (b'a' + ((i * 7 + k * 13) % 26) as u8) as char)
                .collect()
        })
        .collect();
    let mut text = String::with_capacity(INPUT_BYTES + 64);
    while text.len() < INPUT_BYTES {
        // The square of a uniform draw favours small indices (a rough Zipf).
        let u: f64 = rng.random();
        let word = &vocabulary[((u * u) * vocabulary.len() as f64) as usize];
        if rng.random_bool(0.05) {
            text.push_str(&word.to_uppercase());
            text.push_str(". ");
        } else {
            text.push_str(word);
            text.push(' ');
        }
    }
    text.into_bytes()
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(7);
    let runtime = Runtime::new(4).unwrap();
    let simd_flags: Vec<&str> = kiln_builder::build::KERNEL_RUSTFLAGS
        .into_iter()
        .chain(["-Ctarget-feature=+simd128"])
        .collect();
    let simd_modules = build_kernels("kiln-tests-kernels-simd128", &simd_flags);
    let cases: [(&str, &str, EntryFn, Vec<u8>); 3] = [
        (
            "kernel-csv-stats",
            "describe",
            kernel_csv_stats::describe,
            csv_input(&mut rng),
        ),
        (
            "kernel-word-freq",
            "counts",
            kernel_word_freq::counts,
            text_input(&mut rng),
        ),
        (
            "kernel-mandelbrot",
            "tile",
            kernel_mandelbrot::tile,
            br#"{"width":1024,"height":1024,"center":[-0.5,0.0],"span":3.0,"max_iter":256}"#
                .to_vec(),
        ),
    ];
    for (krate, entry, native, input) in cases {
        let kernel = load_precompiled(&runtime, &example_module(krate));
        let under_kiln = || {
            runtime
                .call(&kernel, entry, &input, &LIMITS, None)
                .result
                .unwrap_or_else(|err| panic!("{krate} {entry} under kiln: {err}"))
        };
        let natively = || {
            kiln_kernel::testing::run_with_limit(native, &input, LIMITS.output_bytes as usize)
                .unwrap_or_else(|err| panic!("{krate} {entry} natively: {}", err.message()))
        };
        assert_eq!(
            under_kiln(),
            natively(),
            "{krate} gives the same output either way"
        );
        let simd = load_precompiled(&runtime, &std::fs::read(&simd_modules[krate]).unwrap());
        let under_kiln_simd = || {
            runtime
                .call(&simd, entry, &input, &LIMITS, None)
                .result
                .unwrap_or_else(|err| panic!("{krate} {entry} with simd128 under kiln: {err}"))
        };
        assert_eq!(
            under_kiln_simd(),
            natively(),
            "{krate} built with simd128 gives the same output"
        );
        let wasm = example_module(krate);
        let raw = |change: fn(&mut wasmtime::Config)| {
            let mut config = kiln_engine::config();
            change(&mut config);
            let engine = wasmtime::Engine::new(&config).unwrap();
            let kernel = RawKernel::new(&engine, &wasmtime::Module::new(&engine, &wasm).unwrap());
            assert_eq!(
                kernel.call(entry, &input),
                0,
                "{krate} {entry} through raw wasmtime"
            );
            kernel
        };
        let raw_kiln = raw(|_| {});
        let raw_nan = raw(|c| {
            c.cranelift_nan_canonicalization(true);
        });
        let raw_no_fuel = raw(|c| {
            c.consume_fuel(false);
        });
        let raw_bare = raw(|c| {
            c.consume_fuel(false).epoch_interruption(false);
        });
        let mut group = c.benchmark_group(format!("{krate} {entry}"));
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
        group.bench_function("baseline: native", |b| b.iter(natively));
        group.bench_function("kiln Runtime::call", |b| b.iter(under_kiln));
        group.bench_function("kiln Runtime::call, built with +simd128", |b| {
            b.iter(under_kiln_simd)
        });
        group.bench_function("raw wasmtime, kiln's engine settings", |b| {
            b.iter(|| raw_kiln.call(entry, &input))
        });
        group.bench_function("raw wasmtime, with NaN canonicalisation", |b| {
            b.iter(|| raw_nan.call(entry, &input))
        });
        group.bench_function("raw wasmtime, no fuel", |b| {
            b.iter(|| raw_no_fuel.call(entry, &input))
        });
        group.bench_function("raw wasmtime, no fuel or epochs", |b| {
            b.iter(|| raw_bare.call(entry, &input))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
