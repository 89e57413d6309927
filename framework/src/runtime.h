// Where and in what precision a trial computes: `[runtime] device` and `dtype`.
//
// A trial's models, and the data they read (preference pairs, rollouts, evaluation prompts),
// live on one device; task and annotator plugins compute on the CPU and the framework moves
// their inputs and results (task.h). Random numbers always come from seeded CPU generators, so a
// seed draws the same prompts, minibatches and sampling noise on every device.
#pragma once

#include <ATen/core/ScalarType.h>
#include <c10/core/Device.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <cstddef>
#include <string>

namespace prefopt {

struct Runtime {
  c10::Device device{c10::kCPU};
  at::ScalarType dtype = at::kFloat;  // kFloat, or kBFloat16: autocast, fp32 weights and optimizer state
  bool tf32 = true;                   // CUDA fp32 matrix products in TF32
  std::string description;            // for the run log

  std::string device_type() const;  // "cpu", "cuda": part of the stage cache keys
  std::string dtype_name() const;   // "float32", "bfloat16"
  bool uses_tf32() const { return tf32 && device.is_cuda() && dtype == at::kFloat; }
};

// The device that `setting` ("auto", "cpu", "cuda", "cuda:N") names, given the CUDA devices this
// process sees (CUDA_VISIBLE_DEVICES renumbers them from 0). "auto" is cuda:0 when there is one.
// Throws ConfigError naming `origin` (file:line:column) for a malformed setting or a CUDA device
// that is not there.
c10::Device resolve_device(const std::string& setting, const std::string& origin, std::size_t cuda_devices);

// resolve_device against this process's CUDA devices, with `dtype` ("float32", "bfloat16").
Runtime resolve_runtime(const std::string& device, const std::string& dtype, bool tf32,
                                    const std::string& origin);

// Sets the calling thread's precision for the runtime while it lives: autocast to bfloat16 on the
// runtime's device type (its cast cache off, since weights change in place between forward
// passes), and TF32 for CUDA fp32 matrix products. Restores the previous settings.
class PrecisionScope {
 public:
  explicit PrecisionScope(const Runtime& runtime);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  c10::DeviceType device_type_;
  bool autocast_was_enabled_;
  at::ScalarType autocast_dtype_was_;
  bool cache_was_enabled_;
};

// Full precision for the calling thread while it lives, whatever the trial's dtype: task and
// annotator plugins, and the gold reward every result is judged by, never compute in bfloat16.
class FullPrecision {
 private:
  c10::impl::ExcludeDispatchKeyGuard no_autocast_{c10::autocast_dispatch_keyset};
};

}  // namespace prefopt
