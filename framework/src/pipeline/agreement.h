// Agreement among annotators on nominal labels ("a is better", "b is better", ...), from each
// item's count of votes per category: counts[i][c] = votes item i got for category c.
//
//   Fleiss' κ (1971): items rated by the same number n ≥ 2 of raters each;
//     κ = (P̄ − P_e) / (1 − P_e), P_i = (Σ_c n_ic² − n) / (n (n − 1)), p_c = Σ_i n_ic / (N n),
//     P_e = Σ_c p_c².
//   Krippendorff's α, nominal (2011): any number of raters per item (items with fewer than two
//     votes cannot be paired and are left out); from the coincidence matrix
//     o_ck = Σ_i n_ic (n_ik − [c = k]) / (m_i − 1), α = 1 − (n − 1) Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k.
//
// Both are NaN where they are undefined: no pairable item, or a single category used throughout
// (no disagreement is possible to measure against).
#pragma once

#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>

#include "prefopt/annotator.h"

namespace prefopt {

// counts: [items, categories], non-negative integers (any dtype).
double fleiss_kappa(const at::Tensor& counts);
double krippendorff_alpha_nominal(const at::Tensor& counts);

// The preferences stage's report on its labels, given which response gold prefers ([pairs] bool):
//   kept                       share of pairs the aggregation kept
//   label_agreement_with_gold  share of kept pairs whose aggregated label gold agrees with
//   vote_agreement_with_gold   share of votes gold agrees with, overall and by annotator
//   annotators_agree           share of pairs whose votes are unanimous
//   fleiss_kappa, krippendorff_alpha  chance-corrected agreement between a pair's votes (null
//                              with one vote per pair)
nlohmann::json agreement_report(const Labels& labels, const at::Tensor& gold_prefers_a);

}  // namespace prefopt
