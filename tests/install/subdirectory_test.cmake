# SPDX-License-Identifier: Apache-2.0
# ctest driver (cmake -P): configures tests/install/subdirectory (a parent project that does
# add_subdirectory(kmeans)), builds and runs its app, and checks that installing the parent
# installs nothing of kmeans and that the library follows the parent's BUILD_SHARED_LIBS.
# Inputs: SOURCE_DIR, WORK_DIR, CXX_COMPILER, GENERATOR.
file(REMOVE_RECURSE "${WORK_DIR}")
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)
run("configure" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/install/subdirectory" -B "${WORK_DIR}/build"
    -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DKMEANS_SOURCE_DIR=${SOURCE_DIR} -DKMEANS_ENABLE_CUDA=OFF)
if(NOT last_output MATCHES "kmeans under add_subdirectory: STATIC_LIBRARY")
  message(FATAL_ERROR "without BUILD_SHARED_LIBS the library should be static:\n${last_output}")
endif()
run("build" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("run the app" "${WORK_DIR}/build/classic_study")
if(NOT last_output MATCHES "OK: predict, fit and the reference backend agree")
  message(FATAL_ERROR "app output unexpected:\n${last_output}")
endif()
run("install the parent" ${CMAKE_COMMAND} --install "${WORK_DIR}/build" --prefix "${WORK_DIR}/prefix")
file(GLOB_RECURSE installed "${WORK_DIR}/prefix/*")
if(installed)
  message(FATAL_ERROR "installing the parent installed kmeans files: ${installed}")
endif()
# With the parent's BUILD_SHARED_LIBS=ON the library is shared.
run("configure shared" ${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/install/subdirectory"
    -B "${WORK_DIR}/build-shared" -G "${GENERATOR}" -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DKMEANS_SOURCE_DIR=${SOURCE_DIR}
    -DKMEANS_ENABLE_CUDA=OFF -DBUILD_SHARED_LIBS=ON)
if(NOT last_output MATCHES "kmeans under add_subdirectory: SHARED_LIBRARY")
  message(FATAL_ERROR "with BUILD_SHARED_LIBS=ON the library should be shared:\n${last_output}")
endif()
message(STATUS "add_subdirectory: library only, nothing installed, BUILD_SHARED_LIBS followed")
