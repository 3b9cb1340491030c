# SPDX-License-Identifier: Apache-2.0
# Installation (KMEANS_INSTALL): headers, the library (shared libkmeans.so.0.1 by default), the
# kmeans CLI and bench_kmeans, the CMake package
# (kmeansConfig.cmake, kmeansConfigVersion.cmake, exported kmeans::kmeans and, with MPI,
# kmeans::mpi) and kmeans.pc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(KMEANS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/kmeans)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/kmeans DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS kmeans EXPORT kmeansTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# kmeans::mpi (when built): exported as kmeans::mpi beside kmeans::kmeans.
if(TARGET kmeans_mpi)
  install(TARGETS kmeans_mpi EXPORT kmeansTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
else()
  # The public header needs <mpi.h>: not installed without the library.
  install(CODE "file(REMOVE \"\$ENV{DESTDIR}${CMAKE_INSTALL_FULL_INCLUDEDIR}/kmeans/mpi.hpp\")")
endif()
# The installed programs find libkmeans beside them ($ORIGIN/../lib), wherever the prefix moves.
file(RELATIVE_PATH kmeans_bin_to_lib ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_LIBDIR})
foreach(program kmeans_cli bench_kmeans)
  if(TARGET ${program})
    set_target_properties(${program} PROPERTIES INSTALL_RPATH "$ORIGIN/${kmeans_bin_to_lib}")
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()
install(EXPORT kmeansTargets NAMESPACE kmeans:: DESTINATION ${KMEANS_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kmeansConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kmeansConfig.cmake INSTALL_DESTINATION ${KMEANS_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kmeansConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kmeansConfig.cmake ${PROJECT_BINARY_DIR}/kmeansConfigVersion.cmake
        DESTINATION ${KMEANS_CMAKE_DIR})

# pkg-config for non-CMake users. The shared library needs nothing more on the link line; the
# static one needs OpenMP (and, with CUDA, the static runtime): in Libs.private for
# `pkg-config --static`, in Libs itself when only the static library is installed.
set(KMEANS_PC_DEPS "${OpenMP_CXX_FLAGS}")
if(KMEANS_WITH_CUDA)
  string(APPEND KMEANS_PC_DEPS " -L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt -lpthread")
endif()
if(KMEANS_BUILD_SHARED)
  set(KMEANS_PC_LIBS "")
  set(KMEANS_PC_LIBS_PRIVATE "${KMEANS_PC_DEPS}")
else()
  set(KMEANS_PC_LIBS "${KMEANS_PC_DEPS}")
  set(KMEANS_PC_LIBS_PRIVATE "")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/kmeans.pc.in ${PROJECT_BINARY_DIR}/kmeans.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/kmeans.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# API reference (Doxygen), only when Doxygen is installed: cmake --build build --target docs
find_package(Doxygen QUIET)
if(DOXYGEN_FOUND)
  set(DOXYGEN_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/docs)
  set(DOXYGEN_EXTRACT_ALL NO)
  set(DOXYGEN_USE_MDFILE_AS_MAINPAGE ${PROJECT_SOURCE_DIR}/README.md)
  doxygen_add_docs(docs ${PROJECT_SOURCE_DIR}/include/kmeans ${PROJECT_SOURCE_DIR}/README.md
                   COMMENT "API reference in ${PROJECT_BINARY_DIR}/docs")
endif()
