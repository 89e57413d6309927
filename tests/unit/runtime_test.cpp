// runtime.device and runtime.dtype: which device a setting names, the errors for settings that
// cannot work, and the precision scope's autocast.
#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "prefopt/error.h"
#include "runtime.h"
#include "torch_compat.h"

using namespace prefopt;
using Catch::Contains;

TEST_CASE("runtime.device names the CPU or one of the visible CUDA devices", "[runtime]") {
  CHECK(resolve_device("cpu", "x", 0) == c10::Device(c10::kCPU));
  CHECK(resolve_device("cpu", "x", 2) == c10::Device(c10::kCPU));
  CHECK(resolve_device("auto", "x", 0) == c10::Device(c10::kCPU));
  CHECK(resolve_device("auto", "x", 2) == c10::Device(c10::kCUDA, 0));
  CHECK(resolve_device("cuda", "x", 1) == c10::Device(c10::kCUDA, 0));
  CHECK(resolve_device("cuda:1", "x", 2) == c10::Device(c10::kCUDA, 1));
}

TEST_CASE("runtime.device settings that cannot work are refused with where they came from", "[runtime]") {
  const auto message = [](const std::string& setting, std::size_t devices) -> std::string {
    try {
      resolve_device(setting, "exp.toml:3:10", devices);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "accepted";
  };
  CHECK_THAT(message("gpu", 1), Contains("exp.toml:3:10: runtime.device = \"gpu\": not a device (did you mean 'cpu'?)"));
  CHECK_THAT(message("cuda:x", 1), Contains("the device index must be a number"));
  CHECK_THAT(message("cuda:", 1), Contains("the device index must be a number"));
  CHECK_THAT(message("cuda:-1", 1), Contains("the device index must be a number"));
  CHECK_THAT(message("cuda", 0), Contains("this process sees no CUDA device") && Contains("docs/gpu.md"));
  CHECK_THAT(message("cuda:0", 0), Contains("this process sees no CUDA device"));
  CHECK_THAT(message("cuda:2", 2), Contains("runtime.device = \"cuda:2\": this process sees 2 CUDA devices (cuda:0 to cuda:1"));
  CHECK_THAT(message("cuda:1", 1), Contains("sees 1 CUDA device (cuda:0;"));
}

TEST_CASE("bfloat16 autocasts matrix products while the scope lives, with fp32 weights", "[runtime]") {
  torch::manual_seed(0);
  torch::nn::Linear layer(8, 4);
  const torch::Tensor x = torch::randn({2, 8});
  const torch::Tensor fp32 = layer(x);
  const Runtime runtime = resolve_runtime("cpu", "bfloat16", true, "x");
  CHECK(runtime.dtype_name() == "bfloat16");
  CHECK_THAT(runtime.description, Contains("bfloat16 autocast"));
  {
    const PrecisionScope scope(runtime);
    CHECK(compat::autocast_enabled(c10::kCPU));
    const torch::Tensor y = layer(x);
    CHECK(y.scalar_type() == torch::kBFloat16);
    CHECK(y.to(torch::kFloat).allclose(fp32, 0.05, 0.05));
    CHECK_FALSE(y.to(torch::kFloat).equal(fp32));
    // The weights change in place between forward passes: no stale cast may be reused.
    {
      torch::NoGradGuard no_grad;
      layer->weight.mul_(2);
    }
    CHECK_FALSE(layer(x).equal(y));
  }
  CHECK_FALSE(compat::autocast_enabled(c10::kCPU));
  CHECK(layer(x).scalar_type() == torch::kFloat);
  CHECK(layer->weight.scalar_type() == torch::kFloat);
  const PrecisionScope float32(resolve_runtime("cpu", "float32", true, "x"));
  CHECK(layer(x).scalar_type() == torch::kFloat);
}
