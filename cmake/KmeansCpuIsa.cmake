# SPDX-License-Identifier: Apache-2.0
# The CPU distance kernel is compiled once per instruction set and chosen at run time
# (never -march=native in the shipped build): a portable baseline, AVX2+FMA and AVX-512; and the
# thread pool that runs them.
function(kmeans_add_cpu_kernels target)
  set(src ${PROJECT_SOURCE_DIR}/src)
  target_sources(${target} PRIVATE ${src}/cpu_kernel_generic.cpp ${src}/cpu_pool.cpp)
  # cpu_pool.cpp's std::thread needs pthreads, which -fopenmp (a requirement) already links.
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")  # its direct formula rounds every square
    set_source_files_properties(${src}/cpu_kernel_generic.cpp PROPERTIES COMPILE_OPTIONS -ffp-contract=off)
  endif()
  if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_sources(${target} PRIVATE ${src}/cpu_kernel_avx2.cpp ${src}/cpu_kernel_avx512.cpp)
    set_source_files_properties(${src}/cpu_kernel_avx2.cpp PROPERTIES COMPILE_OPTIONS "-mavx2;-mfma;-ffp-contract=fast")
    set_source_files_properties(${src}/cpu_kernel_avx512.cpp PROPERTIES
      COMPILE_OPTIONS "-mavx512f;-mavx512dq;-mavx512bw;-mavx512vl;-mfma;-mavx2;-ffp-contract=fast")
    target_compile_definitions(${target} PRIVATE KMEANS_X86_KERNELS=1)
  endif()
endfunction()
