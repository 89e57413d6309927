// Interpolation, resolved after composition and overrides (OmegaConf's syntax):
//
//   ${a.b}               the value at a.b (the whole value keeps its type: a table stays a table)
//   lr_${a.b}            string interpolation: scalars are formatted into the text
//   ${.x} ${..x}         relative: a sibling of the value's table, of its parent's, ...
//   ${env:VAR,default}   an environment variable (also ${oc.env:VAR,default}); always a string
//   ${now:%Y-%m-%d}      the local time, strftime format
//   \${literal}          a literal "${"
//   ???                  a mandatory value: an error naming the key unless set before use
//
// Cycles are an error, not a hang; every error names the key and where its value came from.
#pragma once

#include "config/node.h"

namespace prefopt::config {

// Resolves every interpolation in `config` in place. Throws ConfigError listing every mandatory
// value (`???`) left unset, or the first interpolation that cannot be resolved.
void resolve_interpolations(Node& config);

}  // namespace prefopt::config
