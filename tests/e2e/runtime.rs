//! The executor's runtime with the real example kernels (built for wasm32-wasip1 with real
//! cargo): correct outputs under limits, named errors, and deterministic calls that replay to
//! the same bytes.

use kiln_executor::runtime::{Limits, Runtime};
use kiln_tests::kernels::example_module;

fn limits() -> Limits {
    Limits {
        fuel: 5_000_000_000,
        memory_bytes: 64 << 20,
        wall_ms: 10_000,
        output_bytes: 1 << 20,
    }
}

#[test]
fn example_kernels_run_under_limits_with_named_errors() {
    let runtime = Runtime::new(8).unwrap();
    let csv = runtime
        .load_wasm(&example_module("kernel-csv-stats"))
        .unwrap();
    let outcome = runtime.call(&csv, "describe", b"x,y\n1,2\n3,4\n", &limits(), None);
    let output = outcome.result.expect("describe runs");
    let report: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(report["rows"], 2, "{report}");
    assert!(outcome.metrics.fuel > 0 && outcome.metrics.peak_memory_bytes > 0);
    assert_eq!(outcome.metrics.output_bytes, output.len() as u64);

    let words = runtime
        .load_wasm(&example_module("kernel-word-freq"))
        .unwrap();
    let missing = runtime.call(&words, "top", b"{\"limit\": 3}", &limits(), None);
    let err = missing.result.unwrap_err();
    assert_eq!(err.code(), "kernel-error");
    assert!(
        err.to_string().contains("`text` (a string) is required"),
        "{err}"
    );

    let text: String = (0..40_000).map(|i| format!("word{i} ")).collect();
    let small = Limits {
        output_bytes: 100_000,
        ..limits()
    };
    let flood = runtime.call(&words, "counts", text.as_bytes(), &small, None);
    assert!(
        matches!(
            flood.result.as_ref().unwrap_err().code(),
            "output-limit" | "kernel-error"
        ),
        "{:?}",
        flood.result
    );
    assert!(flood.metrics.output_bytes <= 100_000);

    let starved = Limits {
        fuel: 10_000,
        ..limits()
    };
    let out_of_fuel = runtime.call(&words, "counts", text.as_bytes(), &starved, None);
    assert_eq!(out_of_fuel.result.unwrap_err().code(), "out-of-fuel");

    // And after all that, the same runtime still answers.
    assert!(
        runtime
            .call(&csv, "describe", b"a\n1\n", &limits(), None)
            .result
            .is_ok()
    );
}

#[test]
fn deterministic_calls_replay_to_the_same_bytes() {
    let runtime = Runtime::new(4).unwrap();
    let tiles = runtime
        .load_wasm(&example_module("kernel-mandelbrot"))
        .unwrap();
    let request = br#"{"width":64,"height":32,"center":[-0.74,0.12],"span":0.3,"max_iter":300}"#;
    let first = runtime.call(&tiles, "tile", request, &limits(), Some(42));
    let second = runtime.call(&tiles, "tile", request, &limits(), Some(42));
    assert_eq!(
        first.result.as_ref().unwrap(),
        second.result.as_ref().unwrap()
    );
    assert_eq!(
        first.metrics.fuel, second.metrics.fuel,
        "fuel is deterministic too"
    );
}
