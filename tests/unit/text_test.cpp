#include <catch2/catch.hpp>

#include "text.h"

using prefopt::closest_match;
using prefopt::edit_distance;

TEST_CASE("edit distance counts insertions, deletions, substitutions and transpositions", "[text]") {
  CHECK(edit_distance("", "") == 0);
  CHECK(edit_distance("abc", "") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("mean", "maen") == 1);   // one transposition, not two substitutions
  CHECK(edit_distance("lambda", "lamda") == 1);
  CHECK(edit_distance("ensemble", "ensemble") == 0);
}

TEST_CASE("closest_match suggests plausible typos only", "[text]") {
  const std::vector<std::string> names = {"mean", "worst_case", "uncertainty_weighted"};
  CHECK(closest_match("meen", names) == "mean");
  CHECK(closest_match("worstcase", names) == "worst_case");
  CHECK(closest_match("uncertainty", names) == "uncertainty_weighted");  // a prefix
  CHECK_FALSE(closest_match("dpo", names).has_value());
  CHECK_FALSE(closest_match("x", {}).has_value());
  CHECK(prefopt::did_you_mean("meen", names) == " (did you mean 'mean'?)");
  CHECK(prefopt::did_you_mean("zzz", names).empty());
}

TEST_CASE("invalid_utf8_at finds the first byte that is not UTF-8", "[text]") {
  using prefopt::invalid_utf8_at;
  constexpr auto npos = std::string_view::npos;
  CHECK(invalid_utf8_at("plain ascii") == npos);
  CHECK(invalid_utf8_at("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80") == npos);  // é € 😀
  CHECK(invalid_utf8_at("ab\xff") == 2);
  CHECK(invalid_utf8_at("\xc3") == 0);              // truncated sequence
  CHECK(invalid_utf8_at("\xc0\xaf") == 0);          // overlong '/'
  CHECK(invalid_utf8_at("\xed\xa0\x80") == 0);      // a UTF-16 surrogate
  CHECK(invalid_utf8_at("\xf4\x90\x80\x80") == 0);  // past U+10FFFF
}
