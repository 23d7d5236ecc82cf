-- wrk script: each request fetches the index file of a random crate from paths.txt.
local paths = {}
for line in io.lines(os.getenv("KILN_BENCH_PATHS")) do
  paths[#paths + 1] = os.getenv("KILN_BENCH_PREFIX") .. line
end
math.randomseed(42)
request = function()
  return wrk.format("GET", paths[math.random(#paths)])
end
