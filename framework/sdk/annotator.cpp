#include "prefopt/annotator.h"

#include <ATen/ATen.h>
#include <fmt/format.h>

#include "runtime.h"

namespace prefopt {

Annotator::~Annotator() = default;

Labels single_votes(const at::Tensor& prefers_a, std::string name) {
  const std::int64_t n = prefers_a.size(0);
  return {prefers_a.unsqueeze(1), at::zeros({n, 1}, at::kLong), prefers_a, at::ones({n}, at::kBool), {std::move(name)}};
}

Labels Annotator::label(const PairsToLabel& anywhere, at::Generator& generator) const {
  const FullPrecision full_precision;
  const auto cpu = [](const at::Tensor& t) { return t.to(at::kCPU); };
  const PairsToLabel pairs{cpu(anywhere.attributes_a), cpu(anywhere.attributes_b), cpu(anywhere.lengths_a),
                           cpu(anywhere.lengths_b),    cpu(anywhere.prompt_ids),   cpu(anywhere.gold_weights)};
  const std::int64_t n = pairs.attributes_a.size(0);
  if (pairs.attributes_b.sizes() != pairs.attributes_a.sizes() || pairs.lengths_a.size(0) != n ||
      pairs.lengths_b.size(0) != n || pairs.prompt_ids.size(0) != n ||
      pairs.gold_weights.size(0) != pairs.attributes_a.size(1))
    throw std::invalid_argument(fmt::format("{}: inconsistent pair tensors", display_name()));
  Labels labels = guarded([&] { return do_label(pairs, generator); });
  auto check = [&](bool ok, const char* what) {
    if (!ok) throw PluginError(fmt::format("{} returned malformed labels: {}", display_name(), what));
  };
  check(labels.votes.dim() == 2 && labels.votes.size(0) == n && labels.votes.size(1) >= 1 &&
            labels.votes.scalar_type() == at::kBool,
        "votes must be [pairs, votes >= 1] bool");
  check(labels.annotators.sizes() == labels.votes.sizes() && labels.annotators.scalar_type() == at::kLong,
        "annotators must be int64 and shaped like votes");
  check(labels.prefers_a.dim() == 1 && labels.prefers_a.size(0) == n && labels.prefers_a.scalar_type() == at::kBool,
        "prefers_a must be [pairs] bool");
  check(labels.keep.dim() == 1 && labels.keep.size(0) == n && labels.keep.scalar_type() == at::kBool,
        "keep must be [pairs] bool");
  check(!labels.names.empty(), "names must list the annotators");
  if (labels.annotators.numel() > 0)
    check(labels.annotators.min().item<std::int64_t>() >= 0 &&
              labels.annotators.max().item<std::int64_t>() < static_cast<std::int64_t>(labels.names.size()),
          "every annotator index must name one of `names`");
  const c10::Device device = anywhere.attributes_a.device();
  for (at::Tensor* t : {&labels.votes, &labels.annotators, &labels.prefers_a, &labels.keep}) *t = t->to(device);
  return labels;
}

}  // namespace prefopt
