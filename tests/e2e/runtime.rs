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
    assert!(err.to_string().contains("missing field `text`"), "{err}");

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

#[test]
fn the_example_notebook_runs_chains_and_replays() {
    use std::collections::BTreeMap;

    use kiln_executor::notebook::{KernelLock, Notebook};
    use kiln_executor::run::{self, LoadedKernel};
    use kiln_policy::Digest;

    let path = kiln_tests::workspace_root().join("examples/notebooks/tour.json");
    let bytes = std::fs::read(&path).unwrap();
    let notebook = Notebook::parse(&bytes).unwrap();
    let runtime = Runtime::new(8).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut kernels = BTreeMap::new();
    for (name, KernelLock { krate, wasm, .. }) in &notebook.kernels {
        // The pins are what `kiln build` makes of the example: build it and hold it to them.
        let dir = krate.trim_start_matches("kernel-");
        let out = scratch.path().join(name);
        let status = std::process::Command::new(kiln_tests::kiln_binary())
            .arg("build")
            .arg(
                kiln_tests::workspace_root()
                    .join("examples/kernels")
                    .join(dir),
            )
            .arg("--out")
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "kiln build {krate}");
        let module = std::fs::read(out.join("kernel.wasm")).unwrap();
        assert_eq!(
            Digest::of(&module),
            *wasm,
            "{} pins {krate} at {wasm}; kiln build made another module (a new toolchain?): update the pin",
            path.display()
        );
        kernels.insert(
            name.clone(),
            LoadedKernel {
                kernel: runtime.load_wasm(&module).unwrap(),
                wasm: *wasm,
            },
        );
    }
    let result = run::run(&runtime, &notebook, Digest::of(&bytes), &kernels, Some(7)).unwrap();
    let record = &result.record;
    let statuses: Vec<(&str, &str)> = record
        .cells
        .iter()
        .map(|c| (c.id.as_str(), c.status.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("station-stats", "ok"),
            ("top-words", "ok"),
            ("picture", "ok"),
            ("word-counts", "ok"),
            ("count-table", "ok")
        ],
        "{record:?}"
    );
    let output = |id: &str| {
        let cell = record.cells.iter().find(|c| c.id == id).unwrap();
        String::from_utf8(result.outputs[&cell.output.unwrap()].clone()).unwrap()
    };
    let stats: serde_json::Value = serde_json::from_str(&output("station-stats")).unwrap();
    assert_eq!(stats["rows"], 4, "{stats}");
    let top: serde_json::Value = serde_json::from_str(&output("top-words")).unwrap();
    assert_eq!(top["top"][0]["word"], "the", "{top}");
    assert!(output("picture").contains('@'), "{}", output("picture"));
    // The chained cell described the table the cell before counted.
    assert_eq!(record.cells[4].input, record.cells[3].output);
    assert!(
        output("word-counts").contains("to,2"),
        "{}",
        output("word-counts")
    );
    let table: serde_json::Value = serde_json::from_str(&output("count-table")).unwrap();
    assert!(table["rows"].as_u64().unwrap() >= 6, "{table}");
    assert!(
        record
            .cells
            .iter()
            .all(|c| c.metrics.fuel > 0 && c.metrics.wall_us > 0)
    );

    let replayed = run::replay(
        &runtime,
        &notebook,
        record,
        &kernels,
        &kiln_executor::runtime::Cancel::default(),
        &run::RunBudget::UNLIMITED,
        &|_| None,
    )
    .unwrap();
    assert!(replayed.iter().all(|c| c.matches), "{replayed:?}");
}
