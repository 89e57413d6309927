// Annotator plugins simulate the people who label preference pairs: noiseless, Boltzmann-rational,
// AlpacaFarm-style label flips, or a pool of annotators who value the gold reward's attributes
// differently and are not equally reliable.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "prefopt/plugin.h"

namespace prefopt {

// What annotators see of each pair (a, b): the gold attributes of both responses, their lengths
// and which prompt they answer.
struct PairsToLabel {
  at::Tensor attributes_a;  // [pairs, attributes] float
  at::Tensor attributes_b;  // [pairs, attributes] float
  at::Tensor lengths_a;     // [pairs] int64
  at::Tensor lengths_b;     // [pairs] int64
  at::Tensor prompt_ids;    // [pairs] int64: pairs of one prompt share an id
  at::Tensor gold_weights;  // [attributes] float: the gold reward's weights

  at::Tensor gold_a() const { return attributes_a.matmul(gold_weights); }
  at::Tensor gold_b() const { return attributes_b.matmul(gold_weights); }
};

struct Labels {
  at::Tensor votes;       // [pairs, votes] bool: true where the annotator preferred a
  at::Tensor annotators;  // [pairs, votes] int64: who gave each vote (an index into names)
  at::Tensor prefers_a;   // [pairs] bool: the aggregated label
  at::Tensor keep;        // [pairs] bool: false for pairs an aggregation rule discards
  std::vector<std::string> names;  // one per annotator
};

// Labels of an annotator that gives one vote per pair and keeps every pair.
PREFOPT_API Labels single_votes(const at::Tensor& prefers_a, std::string name);

// Annotators compute on the CPU, in full precision: label() hands the plugin CPU copies of the
// pairs, with bfloat16 autocast off, and returns the labels on the pairs' device.
class PREFOPT_API Annotator : public Plugin {
 public:
  static constexpr PluginKind kKind = PluginKind::annotator;
  ~Annotator() override;
  PluginKind kind() const final { return kKind; }

  // Labels every pair; checks the plugin's result for shape and consistency.
  Labels label(const PairsToLabel& pairs, at::Generator& generator) const;

 protected:
  virtual Labels do_label(const PairsToLabel& pairs, at::Generator& generator) const = 0;
};

}  // namespace prefopt
