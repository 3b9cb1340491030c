# SPDX-License-Identifier: Apache-2.0
# Installation: headers, the library, the kmeans CLI and bench_kmeans, the CMake package
# (kmeansConfig.cmake, kmeansConfigVersion.cmake, exported kmeans::kmeans) and kmeans.pc.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(KMEANS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/kmeans)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/kmeans DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS kmeans EXPORT kmeansTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
if(TARGET kmeans_cli)
  install(TARGETS kmeans_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
if(TARGET bench_kmeans)
  install(TARGETS bench_kmeans RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(EXPORT kmeansTargets NAMESPACE kmeans:: DESTINATION ${KMEANS_CMAKE_DIR})

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kmeansConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kmeansConfig.cmake INSTALL_DESTINATION ${KMEANS_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kmeansConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kmeansConfig.cmake ${PROJECT_BINARY_DIR}/kmeansConfigVersion.cmake
        DESTINATION ${KMEANS_CMAKE_DIR})

# pkg-config for non-CMake users; the static library needs its dependencies on the link line.
set(KMEANS_PC_LIBS "${OpenMP_CXX_FLAGS}")
if(KMEANS_WITH_CUDA)
  string(APPEND KMEANS_PC_LIBS
         " -L${CUDAToolkit_LIBRARY_DIR} -lcublas -lcudart_static -ldl -lrt -lpthread")
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
