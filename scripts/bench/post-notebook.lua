-- wrk: POSTs the notebook in $KILN_BENCH_NOTEBOOK to /v1/runs with the token in $KILN_BENCH_TOKEN.
local file = assert(io.open(os.getenv("KILN_BENCH_NOTEBOOK"), "rb"))
wrk.method = "POST"
wrk.path = "/v1/runs"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("KILN_BENCH_TOKEN")

function done(summary, latency, requests)
    io.write(string.format("non-2xx: %d\n", summary.errors.status))
end
