#include "runtime.h"

#include <fmt/format.h>
#include <torch/cuda.h>

#include <charconv>
#include <cstdlib>

#include "prefopt/error.h"
#include "text.h"
#include "torch_compat.h"

namespace prefopt {

std::string Runtime::device_type() const { return device.is_cuda() ? "cuda" : "cpu"; }

std::string Runtime::dtype_name() const { return dtype == at::kBFloat16 ? "bfloat16" : "float32"; }

namespace {

std::string visible_devices_note() {
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  return visible == nullptr ? "CUDA_VISIBLE_DEVICES is unset" : fmt::format("CUDA_VISIBLE_DEVICES={}", visible);
}

}  // namespace

c10::Device resolve_device(const std::string& setting, const std::string& origin, std::size_t cuda_devices) {
  const auto error = [&](const std::string& why) {
    return ConfigError(fmt::format("{}: runtime.device = {}: {}", origin, toml_string(setting), why));
  };
  if (setting == "cpu") return c10::kCPU;
  if (setting == "auto") return cuda_devices > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  std::size_t index = 0;
  if (setting.starts_with("cuda:")) {
    const std::string_view digits = std::string_view(setting).substr(5);
    const auto [end, problem] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (digits.empty() || problem != std::errc() || end != digits.data() + digits.size())
      throw error("the device index must be a number, as in \"cuda:0\"");
  } else if (setting != "cuda") {
    throw error(fmt::format("not a device{}; use \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"",
                            did_you_mean(setting, {"auto", "cpu", "cuda"})));
  }
  if (cuda_devices == 0)
    throw error(fmt::format("this process sees no CUDA device (libtorch {}; {}); run it on a GPU node with a CUDA "
                            "build of prefopt (docs/gpu.md), or set runtime.device = \"auto\" or \"cpu\"",
                            TORCH_VERSION, visible_devices_note()));
  if (index >= cuda_devices)
    throw error(fmt::format("this process sees {} CUDA device{} (cuda:0{}; {})", cuda_devices,
                            cuda_devices == 1 ? "" : "s", cuda_devices == 1 ? "" : fmt::format(" to cuda:{}", cuda_devices - 1),
                            visible_devices_note()));
  return {c10::kCUDA, static_cast<c10::DeviceIndex>(index)};
}

Runtime resolve_runtime(const std::string& device, const std::string& dtype, bool tf32, const std::string& origin) {
  Runtime runtime;
  const std::size_t cuda_devices = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  runtime.device = resolve_device(device, origin, cuda_devices);
  runtime.dtype = dtype == "bfloat16" ? at::kBFloat16 : at::kFloat;
  runtime.tf32 = tf32;
  runtime.description = fmt::format("{} ({} = \"{}\"; {} CUDA device{} visible), {}", runtime.device.str(), "runtime.device",
                                    device, cuda_devices, cuda_devices == 1 ? "" : "s",
                                    runtime.dtype == at::kBFloat16 ? "bfloat16 autocast, fp32 weights" : "float32");
  if (runtime.device.is_cuda() && runtime.dtype == at::kFloat)
    runtime.description += runtime.uses_tf32() ? ", TF32 matrix products" : ", full-precision matrix products (runtime.tf32 = false)";
  // A GPU slot given to a build without CUDA: worth a word, since the trial is then much slower.
  if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
      cuda_devices == 0 && visible != nullptr && *visible != '\0')
    runtime.description += fmt::format("; CUDA_VISIBLE_DEVICES={} names a GPU, but this libtorch ({}) sees none",
                                       visible, TORCH_VERSION);
  return runtime;
}

PrecisionScope::PrecisionScope(const Runtime& runtime)
    : device_type_(runtime.device.type()),
      autocast_was_enabled_(compat::autocast_enabled(device_type_)),
      autocast_dtype_was_(compat::autocast_dtype(device_type_)),
      cache_was_enabled_(at::autocast::is_autocast_cache_enabled()) {
  if (runtime.dtype == at::kBFloat16) {
    compat::set_autocast(device_type_, true, at::kBFloat16);
    at::autocast::set_autocast_cache_enabled(false);
  }
  if (runtime.device.is_cuda()) compat::set_tf32(runtime.tf32);
}

PrecisionScope::~PrecisionScope() {
  compat::set_autocast(device_type_, autocast_was_enabled_, autocast_dtype_was_);
  at::autocast::set_autocast_cache_enabled(cache_was_enabled_);
  if (device_type_ == c10::kCUDA) compat::set_tf32(false);
}

}  // namespace prefopt
