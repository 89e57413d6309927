#include "harness.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  prefopt::fuzz::records_harness(data, size);
  return 0;
}
