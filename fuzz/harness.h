// Fuzz harnesses for the configuration front end, the safetensors header and the dataset reader, shared by the libFuzzer targets (built with
// clang, see fuzz/README.md) and by the regression test that replays fuzz/regressions/ in the
// normal build. A harness may throw prefopt::ConfigError (bad input, reported cleanly); anything
// else — a crash, a hang, a sanitizer report, a failed invariant (abort) — is a bug.
#pragma once

#include <cstddef>
#include <cstdint>

namespace prefopt::fuzz {

// The input is one override; parse it, expand its sweep, and format what came out.
void override_harness(const std::uint8_t* data, std::size_t size);

// The input is a TOML experiment, then a line "---", then one override per line. Composes and
// resolves them, and checks that the printed TOML parses back to the same config.
void compose_harness(const std::uint8_t* data, std::size_t size);

// The input is a safetensors file. Parses its header and checks what a parsed header promises the
// loader: every entry inside the data, spanning exactly its shape's bytes, none overlapping.
void safetensors_harness(const std::uint8_t* data, std::size_t size);

// The input's first byte picks the format (even: JSON Lines, odd: CSV), the rest is a dataset
// file. Reads its rows and checks what the reader promises: every row and bad row at a line of the
// file, rows in order, good rows JSON objects, CSV rows with exactly the header's columns.
void records_harness(const std::uint8_t* data, std::size_t size);

}  // namespace prefopt::fuzz
