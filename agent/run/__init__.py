"""One run of a journey: the runner, its results, the context steps share, the browser
pool and the evidence store."""
