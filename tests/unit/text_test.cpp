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
