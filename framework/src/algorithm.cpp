#include "prefopt/algorithm.h"

namespace prefopt {

Algorithm::~Algorithm() = default;

}  // namespace prefopt
