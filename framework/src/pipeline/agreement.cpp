#include "pipeline/agreement.h"

#include "files.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace prefopt {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

at::Tensor checked(const at::Tensor& counts) {
  if (counts.dim() != 2) throw std::invalid_argument("agreement: counts must be [items, categories]");
  const at::Tensor out = counts.to(at::kCPU, at::kDouble);
  if (out.lt(0).any().item<bool>()) throw std::invalid_argument("agreement: counts must not be negative");
  return out;
}

}  // namespace

double fleiss_kappa(const at::Tensor& counts) {
  const at::Tensor n_ic = checked(counts);
  const at::Tensor raters = n_ic.sum(1);
  if (n_ic.size(0) == 0) return kNaN;
  const double n = raters[0].item<double>();
  if (n < 2 || !raters.eq(n).all().item<bool>())
    throw std::invalid_argument("Fleiss' kappa needs the same number (at least two) of votes on every item");
  const double items = static_cast<double>(n_ic.size(0));
  const at::Tensor p_i = (n_ic.pow(2).sum(1) - n) / (n * (n - 1));
  const double p_bar = p_i.mean().item<double>();
  const double p_e = (n_ic.sum(0) / (items * n)).pow(2).sum().item<double>();
  return p_e < 1 ? (p_bar - p_e) / (1 - p_e) : kNaN;
}

double krippendorff_alpha_nominal(const at::Tensor& counts) {
  const at::Tensor all = checked(counts);
  const at::Tensor pairable = all.sum(1).ge(2);
  const at::Tensor n_ic = all.index({pairable});
  if (n_ic.size(0) == 0) return kNaN;
  const at::Tensor weight = 1.0 / (n_ic.sum(1, /*keepdim=*/true) - 1);  // 1 / (m_i − 1)
  // o = Σ_i (n_i n_iᵀ − diag(n_i)) / (m_i − 1)
  const at::Tensor coincidences = (n_ic * weight).t().matmul(n_ic) - at::diag((n_ic * weight).sum(0));
  const at::Tensor n_c = coincidences.sum(1);
  const double n = n_c.sum().item<double>();
  const double observed = coincidences.sum().item<double>() - coincidences.trace().item<double>();
  const double expected = (n * n - n_c.pow(2).sum().item<double>()) / (n - 1);
  return expected > 0 ? 1 - observed / expected : kNaN;
}

nlohmann::json agreement_report(const Labels& labels, const at::Tensor& gold_prefers_a) {
  const auto mean = [](const at::Tensor& t) { return t.to(at::kDouble).mean().item<double>(); };
  const std::int64_t votes = labels.votes.size(1);
  const at::Tensor for_a = labels.votes.sum(1);
  const at::Tensor counts = at::stack({for_a, votes - for_a}, 1);  // categories: a, b
  const at::Tensor vote_correct = labels.votes.eq(gold_prefers_a.unsqueeze(1));
  nlohmann::json by_annotator = nlohmann::json::object();
  for (std::size_t i = 0; i < labels.names.size(); ++i) {
    const at::Tensor theirs = labels.annotators.eq(static_cast<std::int64_t>(i));
    if (theirs.any().item<bool>()) by_annotator[labels.names[i]] = mean(vote_correct.masked_select(theirs));
  }
  return {{"names", labels.names},
          {"kept", mean(labels.keep)},
          {"label_agreement_with_gold", mean(labels.prefers_a.eq(gold_prefers_a).masked_select(labels.keep))},
          {"vote_agreement_with_gold", mean(vote_correct)},
          {"vote_agreement_with_gold_by_annotator", by_annotator},
          {"annotators_agree", mean(labels.votes.eq(labels.votes.select(1, 0).unsqueeze(1)).all(1))},
          {"fleiss_kappa", finite_or_null(votes >= 2 ? fleiss_kappa(counts) : kNaN)},
          {"krippendorff_alpha", finite_or_null(krippendorff_alpha_nominal(counts))}};
}

}  // namespace prefopt
