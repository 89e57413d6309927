# The config front end (TOML, Hydra overrides, composition, interpolation) with what it uses:
# code without libtorch, listed once for the host library and for the fuzz targets (fuzz/), which
# compile it alone with clang's sanitizers.
set(PREFOPT_CONFIG_FRONT_END_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/src/config/compose.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/config/interpolate.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/config/node.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/config/override.cpp)
# What it uses from the SDK and the shared helpers: libprefopt and prefopt_text provide them to the
# host; the fuzz targets compile them in.
set(PREFOPT_CONFIG_FRONT_END_DEPENDENCIES
  ${CMAKE_CURRENT_LIST_DIR}/sdk/error.cpp
  ${CMAKE_CURRENT_LIST_DIR}/src/text.cpp)
