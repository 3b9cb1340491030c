# SPDX-License-Identifier: Apache-2.0
# ctest driver (cmake -P): install the build tree into a temporary prefix, configure
# examples/ against it with a plain C++ compiler (no CUDA language), build it and run it.
# Inputs: BUILD_DIR, SOURCE_DIR, WORK_DIR, CXX_COMPILER, GENERATOR.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)

run("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
foreach(f include/kmeans/kmeans.hpp)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "install is missing ${f}")
  endif()
endforeach()
file(GLOB_RECURSE config "${prefix}/*/kmeansConfig.cmake")
file(GLOB_RECURSE version_file "${prefix}/*/kmeansConfigVersion.cmake")
file(GLOB_RECURSE pc "${prefix}/*/kmeans.pc")
if(NOT config OR NOT version_file OR NOT pc)
  message(FATAL_ERROR "install is missing the package files: '${config}' '${version_file}' '${pc}'")
endif()

run("configure example" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/examples" -B "${WORK_DIR}/build"
    -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_PREFIX_PATH=${prefix})
run("build example" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("run example" "${WORK_DIR}/build/classic_study")
message(STATUS "${last_output}")
if(NOT last_output MATCHES "OK: predict, fit and the reference backend agree")
  message(FATAL_ERROR "example output unexpected:\n${last_output}")
endif()

# The same example through pkg-config, when pkg-config is installed.
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
  get_filename_component(pc_dir "${pc}" DIRECTORY)
  set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
  run("pkg-config" ${PKG_CONFIG} --cflags --libs kmeans)
  string(STRIP "${last_output}" flags)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  # pkg-config gives no run path: a shared libkmeans (BUILD_SHARED_LIBS) needs one.
  run("pkg-config libdir" ${PKG_CONFIG} --variable=libdir kmeans)
  string(STRIP "${last_output}" pc_libdir)
  run("build example with pkg-config" ${CXX_COMPILER} -std=c++17 -O2
      "${SOURCE_DIR}/examples/classic_study.cpp" -o "${WORK_DIR}/classic_study_pc" ${flags}
      "-Wl,-rpath,${pc_libdir}")
  run("run pkg-config example" "${WORK_DIR}/classic_study_pc")
  if(NOT last_output MATCHES "OK: predict, fit")
    message(FATAL_ERROR "pkg-config example output unexpected:\n${last_output}")
  endif()
  message(STATUS "pkg-config build: OK")
else()
  message(STATUS "pkg-config not installed: pkg-config build not checked")
endif()
