#include "prefopt/reward_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <cmath>

namespace prefopt {

RewardModel::~RewardModel() = default;
NetworkRewardModel::~NetworkRewardModel() = default;

const NetworkRewardModel* as_network_reward_model(const RewardModel& model) {
  return dynamic_cast<const NetworkRewardModel*>(&model);
}

RewardNetImpl::RewardNetImpl(Policy& sft) {
  backbone_ = register_module("backbone", copy_policy(sft));
  const std::int64_t width = sft->hidden_size();
  head_ = register_module("head", torch::nn::Linear(width, 1));
  torch::NoGradGuard no_grad;
  head_->weight.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(width + 1)));
  head_->bias.zero_();
  to(sft->device());
}

torch::Tensor RewardNetImpl::forward(const Sequences& s) {
  const torch::Tensor hidden = backbone_->hidden(torch::cat({s.prompts, s.responses}, 1));
  const torch::Tensor last =
      last_token_positions(s).to(hidden.device()).view({-1, 1, 1}).expand({-1, 1, hidden.size(2)});
  return head_(hidden.gather(1, last).squeeze(1)).squeeze(1).to(torch::kFloat);
}

PreferenceData PreferenceData::select(const at::Tensor& rows_anywhere) const {
  const at::Tensor rows = rows_anywhere.to(labels.votes.device());
  Labels l = labels;
  l.votes = labels.votes.index_select(0, rows);
  l.annotators = labels.annotators.index_select(0, rows);
  l.prefers_a = labels.prefers_a.index_select(0, rows);
  l.keep = labels.keep.index_select(0, rows);
  return {select_rows(a, rows), select_rows(b, rows), std::move(l)};
}

PreferenceData PreferenceData::to(c10::Device device) const {
  Labels l = labels;
  l.votes = labels.votes.to(device);
  l.annotators = labels.annotators.to(device);
  l.prefers_a = labels.prefers_a.to(device);
  l.keep = labels.keep.to(device);
  return {to_device(a, device), to_device(b, device), std::move(l)};
}

void RewardModel::fit(Policy& sft, const PreferenceData& data, at::Generator& generator) {
  if (data.size() == 0) throw std::invalid_argument(fmt::format("{}: no preference pairs to train on", display_name()));
  guarded([&] { do_fit(sft, data, generator); });
  offset_ = 0.0;
  fitted_ = true;
}

void RewardModel::load(Policy& sft, const std::string& folder) {
  guarded([&] { do_load(sft, folder); });
  offset_ = 0.0;
  fitted_ = true;
}

void RewardModel::normalize(const Sequences& reference) { offset_ = score(reference).mean().item<double>() + offset_; }

at::Tensor RewardModel::score(const Sequences& sequences) const {
  if (!fitted_) throw std::logic_error(fmt::format("{}: score() before fit()", display_name()));
  torch::NoGradGuard no_grad;
  at::Tensor scores = guarded([&] { return do_score(sequences); });
  if (scores.dim() != 1 || scores.size(0) != sequences.responses.size(0))
    throw PluginError(fmt::format("{} returned scores of shape {}; expected [{}]", display_name(),
                                  fmt::join(scores.sizes(), "x"), sequences.responses.size(0)));
  return scores.to(torch::kFloat) - offset_;
}

void for_each_minibatch(const PreferenceData& data, std::int64_t epochs, std::int64_t batch_size,
                        at::Generator& generator, const std::function<void(const PreferenceData&)>& step) {
  const std::int64_t n = data.size();
  for (std::int64_t epoch = 0; epoch < epochs; ++epoch) {
    const torch::Tensor order = torch::randperm(n, generator, torch::kLong);
    for (std::int64_t start = 0; start < n; start += batch_size)
      step(data.select(order.narrow(0, start, std::min(batch_size, n - start))));
  }
}

double preference_accuracy(const RewardModel& model, const PreferenceData& data, const at::Tensor& prefers_a) {
  const at::Tensor model_prefers_a = model.score(data.a).gt(model.score(data.b));
  return model_prefers_a.eq(prefers_a).to(torch::kDouble).mean().item<double>();
}

}  // namespace prefopt
