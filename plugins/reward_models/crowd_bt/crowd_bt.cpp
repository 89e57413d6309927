// Crowd-BT (Chen et al. 2013): learns each annotator's reliability eta_k jointly with the reward.
// Every vote is an uncertain observation, P(a > b | k) = eta_k s + (1 - eta_k)(1 - s) with
// s = sigmoid(r_a - r_b), instead of ground truth: the model learns from disagreement rather than
// averaging it away, and an annotator who answers at random (eta ~ 0.5) stops pulling the reward.
#include <prefopt/reward_model.h>
#include <prefopt/serialize.h>
#include <torch/torch.h>

#include <cmath>

namespace {

using prefopt::ParamSpec;

class CrowdBtRewardModel final : public prefopt::NetworkRewardModel {
 public:
  explicit CrowdBtRewardModel(const prefopt::Params& p)
      : epochs_(p.get<std::int64_t>("epochs")),
        batch_size_(p.get<std::int64_t>("batch_size")),
        learning_rate_(p.get<double>("learning_rate")),
        reliability_learning_rate_(p.get<double>("reliability_learning_rate")),
        initial_reliability_(p.get<double>("initial_reliability")) {}

 protected:
  void do_fit(prefopt::Policy& sft, const prefopt::PreferenceData& data, at::Generator& generator) override {
    net_ = prefopt::RewardNet(sft);
    const auto annotators = static_cast<std::int64_t>(data.labels.names.size());
    const double logit = std::log(initial_reliability_ / (1 - initial_reliability_));
    reliability_logits_ = torch::full({annotators}, logit, torch::TensorOptions(sft->device()).requires_grad(true));
    // The reliabilities are a handful of numbers that must move far in a few epochs: their own rate.
    using Group = torch::optim::OptimizerParamGroup;
    torch::optim::AdamW optimizer(
        {Group(net_->parameters(), std::make_unique<torch::optim::AdamWOptions>(
                                       torch::optim::AdamWOptions(learning_rate_).weight_decay(0.0))),
         Group({reliability_logits_}, std::make_unique<torch::optim::AdamWOptions>(
                                          torch::optim::AdamWOptions(reliability_learning_rate_).weight_decay(0.0)))},
        torch::optim::AdamWOptions(learning_rate_).weight_decay(0.0));
    net_->train();
    prefopt::for_each_minibatch(data, epochs_, batch_size_, generator, [&](const prefopt::PreferenceData& batch) {
      const torch::Tensor s = torch::sigmoid(net_->forward(batch.a) - net_->forward(batch.b)).unsqueeze(1);
      const torch::Tensor eta = torch::sigmoid(reliability_logits_).index({batch.labels.annotators});  // [batch, votes]
      const torch::Tensor p_a = (eta * s + (1 - eta) * (1 - s)).clamp(1e-6, 1 - 1e-6);
      const torch::Tensor votes = batch.labels.votes.to(torch::kFloat);
      const torch::Tensor loss = -(votes * p_a.log() + (1 - votes) * (1 - p_a).log()).mean();
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    });
    net_->eval();
  }

  at::Tensor do_score(const prefopt::Sequences& sequences) const override { return net_->forward(sequences); }
  const prefopt::RewardNetImpl& network() const override { return *net_; }

  void do_save(const std::string& folder) const override {
    prefopt::save_to_file(net_, folder + "/reward_net.pt");
    prefopt::save_to_file(reliability_logits_.detach(), folder + "/reliability.pt");
  }

  void do_load(prefopt::Policy& sft, const std::string& folder) override {
    net_ = prefopt::RewardNet(sft);
    torch::load(net_, folder + "/reward_net.pt", sft->device());
    torch::load(reliability_logits_, folder + "/reliability.pt", sft->device());
    net_->eval();
  }

  std::vector<double> do_annotator_reliability() const override {
    if (!reliability_logits_.defined()) return {};
    const torch::Tensor eta = torch::sigmoid(reliability_logits_.detach()).to(torch::kCPU, torch::kDouble);
    return {eta.data_ptr<double>(), eta.data_ptr<double>() + eta.numel()};
  }

 private:
  std::int64_t epochs_, batch_size_;
  double learning_rate_, reliability_learning_rate_, initial_reliability_;
  mutable prefopt::RewardNet net_{nullptr};
  torch::Tensor reliability_logits_;
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<CrowdBtRewardModel>(
      {.name = "crowd_bt",
       .version = "1.0.0",
       .description = "reward model that learns each annotator's reliability from the individual votes",
       .params = {
           ParamSpec::integer("epochs", 2, "passes over the preference pairs").min(1),
           ParamSpec::integer("batch_size", 32, "pairs per step").min(1),
           ParamSpec::real("learning_rate", 1e-3, "AdamW learning rate of the reward network").min(0.0),
           ParamSpec::real("reliability_learning_rate", 0.05, "AdamW learning rate of the reliability logits").min(0.0),
           ParamSpec::real("initial_reliability", 0.8, "every annotator's starting eta, in (0.5, 1)")
               .min(0.51)
               .max(0.99),
       }});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-reward-model-crowd-bt", register_plugins)
