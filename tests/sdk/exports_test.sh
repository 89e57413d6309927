#!/usr/bin/env bash
# libprefopt exports the SDK and nothing else: each symbol it defines for other libraries must
# demangle to a name in namespace prefopt whose first part (a class, namespace, enum, alias or
# function) the public headers declare. Host internals (Registry, run_trial, config::Composer)
# and template instantiations of libstdc++, Boost or libtorch fail it.
#   exports_test.sh LIBPREFOPT INCLUDE_DIR/prefopt
set -euo pipefail
library=$1 headers=$2

# What the public headers declare, comments stripped: type, namespace and alias names, and the
# names of the functions they mark PREFOPT_API ("namespace prefopt::losses" declares losses).
declared=$(sed -e 's://.*$::' -e 's/namespace prefopt::/namespace /' "$headers"/*.h |
  grep -oE '\b(class|struct|enum|namespace|using)( +class)?( +PREFOPT_API)? +[A-Za-z_][A-Za-z0-9_]*|PREFOPT_API +[^;{]*[^A-Za-z0-9_:][A-Za-z_][A-Za-z0-9_]* *\(' |
  grep -oE '[A-Za-z_][A-Za-z0-9_]* *\(?$' | tr -d ' (' | sort -u)

# Defined dynamic symbols, demangled, without nm's address and type columns.
symbols=$(nm -D --defined-only "$library" | awk '{ $1 = ""; $2 = ""; sub(/^ +/, ""); print }' | c++filt)
[[ -n $symbols ]] || { echo "FAIL: $library exports nothing" >&2; exit 1; }

failures=0 checked=0
while IFS= read -r symbol; do
  name=$symbol
  for prefix in "typeinfo name for " "typeinfo for " "vtable for " "VTT for " "non-virtual thunk to " "virtual thunk to "; do
    name=${name#"$prefix"}
  done
  checked=$((checked + 1))
  if [[ $name =~ ^prefopt::([A-Za-z_][A-Za-z0-9_]*) ]] && grep -qxF "${BASH_REMATCH[1]}" <<<"$declared"; then
    continue
  fi
  echo "FAIL: exported but not an SDK declaration: $symbol" >&2
  failures=$((failures + 1))
done <<<"$symbols"

# The SDK's polymorphic classes have their one vtable and typeinfo here.
for required in "typeinfo for prefopt::Plugin" "vtable for prefopt::Algorithm" "prefopt::version_string()"; do
  grep -qxF "$required" <<<"$symbols" || { echo "FAIL: libprefopt does not export $required" >&2; failures=$((failures + 1)); }
done

echo "$checked exported symbols checked, $failures outside the SDK or missing"
((failures == 0))
