# SPDX-License-Identifier: Apache-2.0
# `mpirun -np NP kmeans fit --mpi` writes the single-process fit's centroids and labels byte for
# byte, and a NaN on the last rank's rows ends every rank with one error line from rank 0.
# Inputs: KMEANS_EXE, TEST_MPI (writes the data), MPIEXEC, MPIEXEC_ARGS (;-list), NP, WORK_DIR;
# BACKEND (optional, e.g. cuda: both fits on it; without a usable GPU the test says Skipped).
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
execute_process(COMMAND "${TEST_MPI}" --write-data "${WORK_DIR}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "writing the data failed: ${rc}")
endif()
set(fit fit "${WORK_DIR}/x.npy" --k 5 --init random --seed 3 --sample-weight "${WORK_DIR}/w.npy")
if(BACKEND)
  list(APPEND fit --backend ${BACKEND})
endif()
execute_process(COMMAND "${KMEANS_EXE}" ${fit} --centroids-out "${WORK_DIR}/c1.npy"
                        --labels-out "${WORK_DIR}/l1.npy" --threads 1
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 AND BACKEND STREQUAL "cuda" AND err MATCHES "(backend = cuda requested, but|--backend cuda is not usable:) ([^\n]*)")
  message("cli_mpi ${BACKEND}: Skipped\n${CMAKE_MATCH_2}")  # ctest's SKIP_REGULAR_EXPRESSION
  return()
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the single-process fit failed (${rc}): ${err}")
endif()
execute_process(COMMAND "${MPIEXEC}" ${MPIEXEC_ARGS} -np ${NP} "${KMEANS_EXE}" ${fit} --mpi
                        --centroids-out "${WORK_DIR}/cm.npy" --labels-out "${WORK_DIR}/lm.npy"
                        --json --threads 1
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun -np ${NP} kmeans fit --mpi failed (${rc}): ${out} ${err}")
endif()
string(REGEX MATCHALL "\"command\"" printed "${out}")
list(LENGTH printed times)
if(NOT times EQUAL 1)
  message(FATAL_ERROR "expected one JSON object (rank 0's), got ${times}: ${out}")
endif()
if(NOT out MATCHES "\"ranks\": *${NP}")
  message(FATAL_ERROR "the JSON does not report ${NP} ranks: ${out}")
endif()
if(BACKEND AND NOT out MATCHES "\"backend\": *\"${BACKEND}\"")
  message(FATAL_ERROR "the JSON does not report backend ${BACKEND}: ${out}")
endif()
foreach(pair "c1.npy;cm.npy" "l1.npy;lm.npy")
  list(GET pair 0 a)
  list(GET pair 1 b)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files "${WORK_DIR}/${a}" "${WORK_DIR}/${b}"
                  RESULT_VARIABLE same)
  if(NOT same EQUAL 0)
    message(FATAL_ERROR "${b} (${NP} ranks) differs from ${a} (one process)")
  endif()
endforeach()
execute_process(COMMAND "${MPIEXEC}" ${MPIEXEC_ARGS} -np ${NP} "${KMEANS_EXE}" fit
                        "${WORK_DIR}/bad.npy" --k 5 --mpi --centroids-out "${WORK_DIR}/cb.npy"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "a NaN in the data gave exit code 0")
endif()
string(REGEX MATCHALL "kmeans: error:[^\n]*" lines "${err}")
list(LENGTH lines count)
math(EXPR last "${NP} - 1")
if(NOT count EQUAL 1 OR NOT lines MATCHES "rank ${last}: .*NaN")
  message(FATAL_ERROR "expected one error line naming rank ${last} and the NaN, got: ${err}")
endif()
if(EXISTS "${WORK_DIR}/cb.npy")
  message(FATAL_ERROR "a failed fit left an output file")
endif()
