// The one place where prefopt meets the differences between the libtorch versions it builds
// against: Debian 12's CPU libtorch 1.13 and the CUDA libtorch inside a PyTorch 2.x wheel.
// Everything else calls these and carries no version checks.
#pragma once

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

#define PREFOPT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace prefopt::compat {

// Autocast for one device type (CPU or CUDA): matrix products and other eligible ops in `dtype`.
// 2.4 made the per-device setters generic and deprecated the old ones.
inline void set_autocast(c10::DeviceType device, bool enabled, at::ScalarType dtype) {
#if PREFOPT_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

inline bool autocast_enabled(c10::DeviceType device) {
#if PREFOPT_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}

inline at::ScalarType autocast_dtype(c10::DeviceType device) {
#if PREFOPT_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}

// TF32 for CUDA fp32 matrix products ("high"), or full fp32 ("highest", PyTorch's default).
inline void set_tf32(bool enabled) { at::globalContext().setFloat32MatmulPrecision(enabled ? "high" : "highest"); }

}  // namespace prefopt::compat
