# libFuzzer targets and their corpus replay under make check (see test/fuzz/README.md).
