// Small text helpers for messages: did-you-mean suggestions and lists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace prefopt {

// Optimal-string-alignment distance: insertions, deletions, substitutions and transpositions of
// adjacent characters each cost 1.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` if it is close enough to be a plausible typo (distance at most
// max(1, |word| / 3), or `word` is a prefix of it); ties go to the earlier candidate.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);

// " (did you mean 'x'?)" or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// A TOML basic string, quoted and escaped: "a \"b\"\n".
std::string toml_string(std::string_view text);
// A float as TOML (and as Python's repr, which Hydra's str() cast produces): "10.0", "0.001",
// "1e-05", "inf", "nan". Shortest text that reads back to the same double.
std::string toml_float(double value);
// 64-bit FNV-1a: a hash that is the same on every platform, standard library and run. Continues
// from `state`, the hash of what came before, so a long input can be hashed in pieces.
inline constexpr std::uint64_t kFnv1aOffset = 14695981039346656037ull;
std::uint64_t fnv1a(std::string_view text, std::uint64_t state = kFnv1aOffset);

// The offset of the first byte that is not part of well-formed UTF-8, or npos.
std::size_t invalid_utf8_at(std::string_view text);

// `text` without leading and trailing whitespace.
std::string trim(std::string_view text);

std::string join(const std::vector<std::string>& items, std::string_view separator);

}  // namespace prefopt
