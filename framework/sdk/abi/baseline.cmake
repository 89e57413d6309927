# The SDK release whose ABI every later minor version of the same major keeps. Written, with
# sdk-<API>.abi.xz beside it, by scripts/abi-baseline.sh when a major version is released.
#   API        the release's SDK API version
#   COMMIT     the commit it was released from: its public headers build the older-minor test plugin
#   TOOLCHAIN  compiler and libtorch the ABI description was made with (only that build checks it)
set(PREFOPT_ABI_BASELINE_API 2.0)
set(PREFOPT_ABI_BASELINE_COMMIT 2e37f16aa6ebb79c0614da3ec72a6200c998ff1a)
set(PREFOPT_ABI_BASELINE_TOOLCHAIN "GNU-12 libtorch-1.13.0")
