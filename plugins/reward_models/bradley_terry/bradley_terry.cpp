// The Bradley-Terry reward model: P(chosen > rejected) = sigmoid(r_chosen - r_rejected - margin),
// trained on each pair's aggregated label, with optional label smoothing (conservative targets
// under label noise).
#include <prefopt/reward_model.h>
#include <prefopt/serialize.h>
#include <torch/torch.h>

namespace {

using prefopt::ParamSpec;

class BradleyTerryRewardModel final : public prefopt::NetworkRewardModel {
 public:
  explicit BradleyTerryRewardModel(const prefopt::Params& p)
      : epochs_(p.get<std::int64_t>("epochs")),
        batch_size_(p.get<std::int64_t>("batch_size")),
        learning_rate_(p.get<double>("learning_rate")),
        margin_(p.get<double>("margin")),
        smoothing_(p.get<double>("label_smoothing")) {}

 protected:
  void do_fit(prefopt::Policy& sft, const prefopt::PreferenceData& all, at::Generator& generator) override {
    const prefopt::PreferenceData data = all.select(all.labels.keep.nonzero().squeeze(1));
    net_ = prefopt::RewardNet(sft);
    torch::optim::AdamW optimizer(net_->parameters(), torch::optim::AdamWOptions(learning_rate_).weight_decay(0.0));
    net_->train();
    prefopt::for_each_minibatch(data, epochs_, batch_size_, generator, [&](const prefopt::PreferenceData& batch) {
      // Positive when the model agrees with the label.
      const torch::Tensor sign = batch.labels.prefers_a.to(torch::kFloat) * 2 - 1;
      const torch::Tensor delta = sign * (net_->forward(batch.a) - net_->forward(batch.b)) - margin_;
      const torch::Tensor loss =
          -((1 - smoothing_) * torch::log_sigmoid(delta) + smoothing_ * torch::log_sigmoid(-delta)).mean();
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
  }

  void do_load(prefopt::Policy& sft, const std::string& folder) override {
    net_ = prefopt::RewardNet(sft);
    torch::load(net_, folder + "/reward_net.pt", sft->device());
    net_->eval();
  }

 private:
  std::int64_t epochs_, batch_size_;
  double learning_rate_, margin_, smoothing_;
  mutable prefopt::RewardNet net_{nullptr};
};

void register_plugins(prefopt::Registrar& registrar) {
  registrar.add<BradleyTerryRewardModel>(
      {.name = "bradley_terry",
       .version = "1.0.0",
       .description = "Bradley-Terry reward model on the aggregated labels, from the SFT policy",
       .params = {
           ParamSpec::integer("epochs", 2, "passes over the preference pairs").min(1),
           ParamSpec::integer("batch_size", 32, "pairs per step").min(1),
           ParamSpec::real("learning_rate", 1e-3, "AdamW learning rate").min(0.0),
           ParamSpec::real("margin", 0.0, "required score gap: -log sigmoid(r_w - r_l - margin)"),
           ParamSpec::real("label_smoothing", 0.0, "epsilon: trust each label with probability 1 - epsilon")
               .min(0.0)
               .max(0.5),
       }});
}

}  // namespace

PREFOPT_PLUGIN_LIBRARY("prefopt-reward-model-bradley-terry", register_plugins)
