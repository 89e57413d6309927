# prefopt_add_plugin(NAME KIND SOURCES src... [LIBRARIES lib...])
#
# Builds a prefopt plugin library: a MODULE library named <KIND>_<NAME>.so, compiled with hidden
# visibility and the toolchain fingerprint, linked to libprefopt, and installed to the plugin
# folder. Used for prefopt's built-in plugins and, through find_package(prefopt), by third parties.
include_guard(GLOBAL)

set(PREFOPT_PLUGIN_KINDS algorithm reward_model annotator ensemble task)

function(prefopt_add_plugin name kind)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "SOURCES;LIBRARIES")
  if(NOT kind IN_LIST PREFOPT_PLUGIN_KINDS)
    message(FATAL_ERROR "prefopt_add_plugin(${name}): unknown kind '${kind}'; "
                        "kinds are ${PREFOPT_PLUGIN_KINDS}")
  endif()
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "prefopt_add_plugin(${name}): no SOURCES given")
  endif()
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "prefopt_add_plugin(${name}): unexpected arguments ${arg_UNPARSED_ARGUMENTS}")
  endif()

  set(target prefopt_${kind}_${name})
  add_library(${target} MODULE ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE prefopt::prefopt ${arg_LIBRARIES})
  # A plugin reaches prefopt through the SDK only: a call into prefopt's internals, or anything
  # else left unresolved, fails here at link time rather than when prefopt loads the library.
  target_link_options(${target} PRIVATE LINKER:--no-undefined)
  # The build type is part of the toolchain fingerprint prefopt checks when loading the plugin. A
  # project that sets none builds its plugins as prefopt was built (that build type's flags and
  # name), on the plugin targets only: the project's own cache and other targets are untouched.
  if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES AND PREFOPT_BUILD_TYPE)
    string(TOUPPER "${PREFOPT_BUILD_TYPE}" build_type)
    separate_arguments(build_type_flags UNIX_COMMAND "${CMAKE_CXX_FLAGS_${build_type}}")
    target_compile_options(${target} PRIVATE ${build_type_flags})
    target_compile_definitions(${target} PRIVATE PREFOPT_BUILD_TYPE=${PREFOPT_BUILD_TYPE})
  else()
    target_compile_definitions(${target} PRIVATE PREFOPT_BUILD_TYPE=$<CONFIG>)
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${kind}_${name}
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(PREFOPT_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${PREFOPT_PLUGIN_OUTPUT_DIR})
  endif()
  if(COMMAND prefopt_reuse_pch)  # prefopt's own build: reuse its precompiled LibTorch headers
    prefopt_reuse_pch(${target})
  endif()
  install(TARGETS ${target} LIBRARY DESTINATION ${PREFOPT_PLUGIN_INSTALL_DIR})
  set_property(GLOBAL APPEND PROPERTY PREFOPT_PLUGIN_TARGETS ${target})  # every plugin of this build
endfunction()
