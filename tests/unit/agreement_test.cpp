// Inter-annotator agreement against the published worked examples of Fleiss (1971) and
// Krippendorff (2011), and the cases where the statistics are undefined.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include <cmath>

#include "pipeline/agreement.h"

using namespace prefopt;

TEST_CASE("Fleiss' kappa of the classic example: 10 items, 14 raters, 5 categories", "[agreement]") {
  const torch::Tensor counts = torch::tensor({0, 0, 0, 0, 14, 0, 2, 6, 4, 2, 0, 0, 3, 5, 6, 0, 3, 9, 2, 0, 2, 2, 8, 1, 1,
                                              7, 7, 0, 0, 0, 3, 2, 6, 3, 0, 2, 5, 3, 2, 2, 6, 5, 2, 1, 0, 0, 2, 2, 3, 7})
                                   .view({10, 5});
  // P̄ = 0.378, P_e = 0.2128: κ = 0.2099.
  CHECK(fleiss_kappa(counts) == Approx(0.20993).margin(1e-4));
  // Perfect agreement on varied items is 1; votes split evenly on every item is below 0.
  CHECK(fleiss_kappa(torch::tensor({3, 0, 0, 3}).view({2, 2})) == Approx(1.0));
  CHECK(fleiss_kappa(torch::tensor({1, 1, 1, 1}).view({2, 2})) == Approx(-1.0));
  CHECK(std::isnan(fleiss_kappa(torch::tensor({3, 0, 3, 0}).view({2, 2}))));  // one category throughout
  CHECK_THROWS_WITH(fleiss_kappa(torch::tensor({3, 0, 1, 1}).view({2, 2})), Catch::Contains("same number"));
}

TEST_CASE("Krippendorff's alpha of the worked example with missing values: 4 observers, 12 units", "[agreement]") {
  // Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the nominal case: values 1-5
  // of observers A-D per unit, '.' where an observer gave none; unit 12 has one value and is left out.
  const std::vector<std::vector<int>> units = {{1, 1, 1},    {2, 2, 3, 2}, {3, 3, 3, 3}, {3, 3, 3, 3},
                                               {2, 2, 2, 2}, {1, 2, 3, 4}, {4, 4, 4, 4}, {1, 1, 2, 1},
                                               {2, 2, 2, 2}, {5, 5, 5},    {1, 1},       {3}};
  torch::Tensor counts = torch::zeros({12, 5}, torch::kLong);
  for (std::size_t u = 0; u < units.size(); ++u)
    for (const int value : units[u]) counts[static_cast<std::int64_t>(u)][value - 1] += 1;
  CHECK(krippendorff_alpha_nominal(counts) == Approx(0.743).margin(5e-4));
  // With every unit rated by equally many raters, alpha = 1 − (1 − kappa)(v − 1)/v for v values
  // in all: here kappa = 4/9, alpha = 13/27.
  const torch::Tensor complete = torch::tensor({3, 0, 2, 1, 0, 3, 1, 2, 3, 0}).view({5, 2});
  CHECK(fleiss_kappa(complete) == Approx(4.0 / 9));
  CHECK(krippendorff_alpha_nominal(complete) == Approx(13.0 / 27));
  CHECK(std::isnan(krippendorff_alpha_nominal(torch::tensor({1, 0, 0, 1}).view({2, 2}))));  // nothing pairable
}

TEST_CASE("the preferences stage reports agreement with gold, by annotator, and between votes", "[agreement]") {
  // Four pairs, three votes each by annotators 0, 1, 2; gold prefers a on pairs 0 and 2.
  Labels labels;
  labels.votes = torch::tensor({true, true, true, false, true, false, true, true, false, false, false, false}).view({4, 3});
  labels.annotators = torch::tensor({0, 1, 2}, torch::kLong).repeat({4, 1});
  labels.prefers_a = torch::tensor({true, false, true, false});  // the majority
  labels.keep = torch::tensor({true, true, true, false});
  labels.names = {"ann", "bob", "cy"};
  const torch::Tensor gold = torch::tensor({true, false, true, false});
  const nlohmann::json report = agreement_report(labels, gold);
  CHECK(report["kept"] == Approx(0.75));
  CHECK(report["label_agreement_with_gold"] == Approx(1.0));
  CHECK(report["vote_agreement_with_gold"] == Approx(10.0 / 12));
  CHECK(report["vote_agreement_with_gold_by_annotator"]["ann"] == Approx(1.0));
  CHECK(report["vote_agreement_with_gold_by_annotator"]["bob"] == Approx(0.75));  // wrong on pair 1
  CHECK(report["vote_agreement_with_gold_by_annotator"]["cy"] == Approx(0.75));   // wrong on pair 2
  CHECK(report["annotators_agree"] == Approx(0.5));
  // Per pair (a, b) votes: (3,0), (1,2), (2,1), (0,3): P̄ = 2/3, P_e = 1/2, kappa = 1/3.
  CHECK(report["fleiss_kappa"] == Approx(1.0 / 3));
  CHECK(report["krippendorff_alpha"] == Approx(1 - (1 - 1.0 / 3) * 11 / 12));

  const nlohmann::json single = agreement_report(single_votes(gold, "oracle"), gold);
  CHECK(single["fleiss_kappa"].is_null());  // one vote per pair: nothing to agree on
  CHECK(single["krippendorff_alpha"].is_null());
  CHECK(single["vote_agreement_with_gold_by_annotator"]["oracle"] == Approx(1.0));
}
