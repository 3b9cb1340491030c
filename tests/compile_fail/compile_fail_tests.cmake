# SPDX-License-Identifier: Apache-2.0
# The typed API rejects mismatched arrays at compile time: params_types.cpp compiles with
# CASE=0 (the right types, so the command itself works) and fails with every other CASE.
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  set(_src ${CMAKE_CURRENT_LIST_DIR}/params_types.cpp)
  set(_cmd ${CMAKE_CXX_COMPILER} -std=c++17 -fsyntax-only -I${PROJECT_SOURCE_DIR}/include ${_src})
  add_test(NAME compile.params_types_ok COMMAND ${_cmd} -DCASE=0)
  set_tests_properties(compile.params_types_ok PROPERTIES LABELS "cpu;compile")
  foreach(_case 1 2 3 4 5 6 7)
    add_test(NAME compile.params_types_mismatch_${_case} COMMAND ${_cmd} -DCASE=${_case})
    set_tests_properties(compile.params_types_mismatch_${_case} PROPERTIES
                         WILL_FAIL TRUE LABELS "cpu;compile")
  endforeach()
endif()
