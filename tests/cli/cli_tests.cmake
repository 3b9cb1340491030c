# SPDX-License-Identifier: Apache-2.0
# End-to-end tests of the kmeans CLI (included from tests/CMakeLists.txt): good runs with their
# outputs checked, and every bad input giving one error line, the documented exit code and no
# output file. Each case runs tests/cli/run_cli_case.cmake; see it for the checks.

set(KMEANS_CLI_DATA "${CMAKE_CURRENT_LIST_DIR}/../data")
set(KMEANS_CLI_WORK "${CMAKE_CURRENT_BINARY_DIR}/cli_work")

# kmeans_cli_case(name RC code ARGS args... [EXPECT_STDERR re] [EXPECT_STDOUT re] [PRE args]
#                 [JSON_KEYS k|k] [JSON_EQUAL k=v|k=v] [JSON_RANGE k=lo,hi|...]
#                 [LABELS_NPY path=n,k] [EXPECT_LABELS l,l,...] [MATRIX_CSV path=rows,cols]
#                 [EXPECT_MATRIX lo,hi|...] [SAME_FILES a|b] [STDERR_LINES n|key]
#                 [STDERR_EVERY_LINE re] [JSON_MATCH k=re|k=re] [STDIN_FILE path]
#                 [STDERR_USAGE re] [WRITE_FILES name=text|...] [COPY_FILES src=dst|...]
#                 [SYMLINKS target=link|...])
function(kmeans_cli_case name)
  set(one RC EXPECT_STDERR EXPECT_STDOUT JSON_KEYS JSON_EQUAL JSON_MATCH JSON_RANGE LABELS_NPY
      EXPECT_LABELS MATRIX_CSV EXPECT_MATRIX SAME_FILES STDERR_LINES STDERR_EVERY_LINE
      STDIN_FILE STDERR_USAGE WRITE_FILES COPY_FILES SYMLINKS)
  cmake_parse_arguments(C "" "${one}" "ARGS;PRE" ${ARGN})
  # "|" separates the arguments on the way to run_cli_case.cmake: one inside an argument
  # (--init k-means||) travels as @BAR@.
  list(TRANSFORM C_ARGS REPLACE "[|]" "@BAR@")
  list(TRANSFORM C_PRE REPLACE "[|]" "@BAR@")
  list(JOIN C_ARGS "|" args)
  set(defs "-DKMEANS_EXE=$<TARGET_FILE:kmeans_cli>" "-DDATA_DIR=${KMEANS_CLI_DATA}"
           "-DWORK_DIR=${KMEANS_CLI_WORK}/${name}" "-DCASE_ARGS=${args}" "-DEXPECT_RC=${C_RC}")
  if(C_PRE)
    list(JOIN C_PRE "|" pre)
    list(APPEND defs "-DPRE_ARGS=${pre}")
  endif()
  foreach(opt IN LISTS one)
    if(NOT opt STREQUAL "RC" AND DEFINED C_${opt})
      list(APPEND defs "-D${opt}=${C_${opt}}")
    endif()
  endforeach()
  add_test(NAME cli.${name}
           COMMAND ${CMAKE_COMMAND} ${defs} -P ${CMAKE_CURRENT_LIST_DIR}/run_cli_case.cmake)
  set_tests_properties(cli.${name} PROPERTIES LABELS "cpu;cli" TIMEOUT 150)
endfunction()

# Outputs requested by every failing fit: none of them may appear.
set(OUT --centroids-out @WORK@/c.npy --labels-out @WORK@/l.npy)
set(FIT_KEYS "backend|backend_reason|cluster_sizes|imbalance_history|dtype|n|d|k|init|n_init|n_iter|converged|inertia|sse_history|seconds|n_empty_relocated|warnings|timings|sample_weight")
set(PREDICT_KEYS "backend|dtype|n|d|k|inertia|seconds")
# tiny: clusters {(0,0), (0,1), (1,0)} and {(10,10), (10,11), (11,10)}; from tiny_init
# [(0,0), (10,10)] Lloyd reaches the means (1/3, 1/3) and (31/3, 31/3) in one update and sees no
# label change in the second iteration; the inertia is 2 * (2/9 + 5/9 + 5/9) = 8/3.
set(TINY_INERTIA "inertia=2.6666666666,2.6666666667")
set(THIRD "0.33333333333,0.33333333334")
set(THIRTY_ONE_THIRDS "10.333333333,10.333333334")

# --- good runs ---------------------------------------------------------------------------------
kmeans_cli_case(fit_csv_json RC 0
  ARGS fit @DATA@/tiny.csv --k 2 --init @DATA@/tiny_init.npy --backend cpu --json
       --labels-out @WORK@/labels.npy --centroids-out @WORK@/centroids.csv
  JSON_KEYS "${FIT_KEYS}|timings.assign"
  JSON_EQUAL "n=6|d=2|k=2|dtype=float64|backend=cpu|n_iter=2|converged=ON|n_empty_relocated=0|cluster_sizes.0=3|cluster_sizes.1=3|imbalance_history.0=1|imbalance_history.1=1"
  JSON_RANGE "${TINY_INERTIA}"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1
  MATRIX_CSV @WORK@/centroids.csv=2,2
  EXPECT_MATRIX "${THIRD}|${THIRD}|${THIRTY_ONE_THIRDS}|${THIRTY_ONE_THIRDS}")
kmeans_cli_case(fit_npy_kmeanspp RC 0
  ARGS fit @DATA@/tiny.npy --k 2 --json --labels-out @WORK@/labels.npy --seed 7
  JSON_KEYS "${FIT_KEYS}" JSON_EQUAL "n=6|d=2|k=2|dtype=float64|converged=ON"
  LABELS_NPY @WORK@/labels.npy=6,2)
kmeans_cli_case(fit_npy_float32 RC 0
  ARGS fit @DATA@/tiny_f32.npy --k 2 --init random --json --labels-out @WORK@/labels.npy
  JSON_KEYS "${FIT_KEYS}" JSON_EQUAL "dtype=float32|n=6|d=2" LABELS_NPY @WORK@/labels.npy=6,2)
kmeans_cli_case(fit_dtype_conversion RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --dtype float32 --json
  JSON_EQUAL "dtype=float32|k=2" JSON_RANGE "inertia=2.6666,2.6667")
kmeans_cli_case(fit_k_from_init_file RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --threads 1 --json
  JSON_EQUAL "k=2|n_iter=2" JSON_RANGE "${TINY_INERTIA}")
kmeans_cli_case(fit_max_iter_zero RC 0
  ARGS fit @DATA@/tiny.npy --k=2 --init=@DATA@/tiny_init.npy --max-iter=0 --json
       --labels-out @WORK@/labels.npy
  JSON_EQUAL "n_iter=0|converged=OFF" JSON_RANGE "inertia=3.999999999,4.000000001"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1)
kmeans_cli_case(fit_human_summary RC 0
  ARGS fit @DATA@/tiny.csv --k 2 --init @DATA@/tiny_init.npy --labels-out @WORK@/labels.csv
  EXPECT_STDOUT "kmeans fit: n = 6, d = 2, k = 2 .*converged after 2 iterations.*inertia 2.66667.*labels written to")
# Mini-batch k-means: from tiny_init every batch row is nearest its own cluster's centroid, so
# the labels are Lloyd's; max_iter 2 with batches of 2 of the 6 rows and no stopping rule is
# exactly 2 * 6 / 2 = 6 steps.
kmeans_cli_case(fit_minibatch_json RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --batch-size 3 --backend cpu --json --tol 0.001
       --labels-out @WORK@/labels.npy
  JSON_KEYS "${FIT_KEYS}|algorithm|minibatch.batch_size|minibatch.n_steps|minibatch.max_no_improvement|minibatch.reassignment_ratio"
  JSON_EQUAL "algorithm=minibatch|minibatch.batch_size=3|minibatch.max_no_improvement=10|tol=0.001|n=6|k=2|cluster_sizes.0=3|cluster_sizes.1=3"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1)
kmeans_cli_case(fit_minibatch_steps RC 0
  ARGS fit @DATA@/tiny_f32.npy --k 2 --batch-size 2 --seed 3 --max-iter 2 --reassignment-ratio 0
       --max-no-improvement 0 --json
  JSON_EQUAL "algorithm=minibatch|dtype=float32|minibatch.n_steps=6|n_iter=2|converged=OFF|minibatch.reassignment_ratio=0|tol=0")
kmeans_cli_case(fit_minibatch_summary RC 0
  ARGS fit @DATA@/tiny.csv --init @DATA@/tiny_init.npy --batch-size 4
  EXPECT_STDOUT "mini-batch k-means \\(batch_size 4\\): converged after [0-9]+ steps, [0-9]+ epochs? \\(max_iter 300\\)")
kmeans_cli_case(fit_lloyd_algorithm RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --json
  JSON_EQUAL "algorithm=lloyd|n_iter=2")
kmeans_cli_case(usage_minibatch_flag_without_batch_size RC 2
  ARGS fit @DATA@/tiny.csv --k 2 ${OUT} --reassignment-ratio 0.1
  EXPECT_STDERR "--reassignment-ratio applies to mini-batch k-means only: give --batch-size N too")
kmeans_cli_case(predict_matches_fit RC 0
  PRE fit @DATA@/tiny.npy --k 2 --centroids-out @WORK@/c.npy --labels-out @WORK@/fit.npy
  ARGS predict @DATA@/tiny.npy --centroids @WORK@/c.npy --labels-out @WORK@/predict.npy --json
  JSON_KEYS "${PREDICT_KEYS}" JSON_EQUAL "n=6|d=2|k=2"
  LABELS_NPY @WORK@/predict.npy=6,2 SAME_FILES "@WORK@/fit.npy|@WORK@/predict.npy")
kmeans_cli_case(predict_csv_centroids RC 0
  PRE fit @DATA@/tiny.csv --init @DATA@/tiny_init.npy --centroids-out @WORK@/c.csv
      --labels-out @WORK@/fit.csv
  ARGS predict @DATA@/tiny.csv --centroids @WORK@/c.csv --labels-out @WORK@/predict.csv --json
  JSON_RANGE "${TINY_INERTIA}" SAME_FILES "@WORK@/fit.csv|@WORK@/predict.csv")
kmeans_cli_case(version RC 0 ARGS --version EXPECT_STDOUT "^kmeans [0-9]+\\.[0-9]+\\.[0-9]+[^ -~]*$")
kmeans_cli_case(help RC 0 ARGS --help EXPECT_STDOUT "usage: kmeans fit.*Exit codes")
kmeans_cli_case(fit_help RC 0 ARGS fit --help EXPECT_STDOUT "--max-iter.*--centroids-out")
kmeans_cli_case(predict_help RC 0 ARGS predict --help EXPECT_STDOUT "--centroids PATH.*--model PATH")
kmeans_cli_case(fit_help_model_out RC 0 ARGS fit --help EXPECT_STDOUT "--model-out PATH")
# --algorithm elkan: the same fit as Lloyd's, and the JSON says which was asked for.
kmeans_cli_case(fit_algorithm_elkan RC 0
  ARGS fit @DATA@/tiny.csv --k 2 --init @DATA@/tiny_init.npy --backend cpu --json
       --algorithm elkan --labels-out @WORK@/labels.npy
  JSON_EQUAL "algorithm=elkan|n_iter=2|converged=ON"
  JSON_RANGE "${TINY_INERTIA}"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1)
kmeans_cli_case(fit_algorithm_unknown RC 2
  ARGS fit @DATA@/tiny.csv --k 2 --algorithm hamerly
  EXPECT_STDERR "--algorithm 'hamerly' is unknown: expected lloyd, elkan or auto")

# --- estimator features: sample weights, k-means||, n_init, --verbose, warnings ----------------
# weights_tiny doubles (0,0) and (11,10): the weighted means are (1/4, 1/4) and (21/2, 41/4),
# the weighted inertia 3/2 + 7/4 = 13/4.
set(WEIGHTED_INERTIA "inertia=3.2499999999,3.2500000001")
set(QUARTER "0.24999999999,0.25000000001")
kmeans_cli_case(fit_sample_weight_npy RC 0
  ARGS fit @DATA@/tiny.csv --init @DATA@/tiny_init.npy --sample-weight @DATA@/weights_tiny.npy
       --json --labels-out @WORK@/labels.npy --centroids-out @WORK@/centroids.csv
  JSON_KEYS "${FIT_KEYS}" JSON_EQUAL "k=2|n_iter=2|converged=ON|sample_weight=@DATA@/weights_tiny.npy"
  JSON_RANGE "${WEIGHTED_INERTIA}"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1
  MATRIX_CSV @WORK@/centroids.csv=2,2
  EXPECT_MATRIX "${QUARTER}|${QUARTER}|10.499999999,10.500000001|10.249999999,10.250000001")
kmeans_cli_case(fit_sample_weight_column_npy RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --sample-weight @DATA@/weights_tiny_col.npy --json
  JSON_RANGE "${WEIGHTED_INERTIA}")
kmeans_cli_case(fit_sample_weight_csv_to_float32 RC 0
  ARGS fit @DATA@/tiny_f32.npy --init @DATA@/tiny_init.npy --sample-weight @DATA@/weights_tiny_col.csv --json
  JSON_EQUAL "dtype=float32" JSON_RANGE "inertia=3.2499,3.2501")
kmeans_cli_case(fit_sample_weight_human RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --sample-weight @DATA@/weights_tiny.npy
  EXPECT_STDOUT "weighted\\).*inertia 3.25 ")
kmeans_cli_case(fit_init_kmeans_plus_plus_alias RC 0 ARGS fit @DATA@/tiny.npy --k 2 --init kmeans++ --json
  JSON_EQUAL "init=k-means++" JSON_RANGE "${TINY_INERTIA}")
set(parallel_spellings "k-means||" "kmeans||" "k-means-parallel")
set(parallel_cases k_means_bars kmeans_bars k_means_parallel)
foreach(name case IN ZIP_LISTS parallel_spellings parallel_cases)
  kmeans_cli_case(fit_init_${case} RC 0
    ARGS fit @DATA@/tiny.npy --k 2 --init ${name} --json --labels-out @WORK@/labels.npy
    JSON_KEYS "${FIT_KEYS}" JSON_EQUAL "init=k-means@BAR@@BAR@|n_init=1|converged=ON|warnings=[]"
    JSON_RANGE "${TINY_INERTIA}" LABELS_NPY @WORK@/labels.npy=6,2)
endforeach()
kmeans_cli_case(fit_n_init RC 0
  ARGS fit @DATA@/tiny.npy --k 2 --init random --n-init 4 --seed 3 --json
  JSON_EQUAL "init=random|n_init=4|seed=3|warnings=[]" JSON_RANGE "${TINY_INERTIA}")
kmeans_cli_case(fit_n_init_weighted_parallel RC 0
  ARGS fit @DATA@/tiny.csv --k 2 --init=k-means|| --n-init=3 --sample-weight=@DATA@/weights_tiny.npy --json
  JSON_EQUAL "init=k-means@BAR@@BAR@|n_init=3" JSON_RANGE "${WEIGHTED_INERTIA}")
# Warnings: in the JSON with --json (stderr stays empty), on stderr otherwise.
kmeans_cli_case(fit_warning_json RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --n-init 3 --json
  JSON_EQUAL "init=array|n_init=1|n_iter=2" JSON_MATCH "warnings.0=n_init = 3 ignored")
kmeans_cli_case(fit_warning_human RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --n-init 3
  EXPECT_STDOUT "init array, n_init 1\\).*converged after 2 iterations" STDERR_LINES 1
  STDERR_EVERY_LINE "^kmeans: warning: init = Array: n_init = 3 ignored")
kmeans_cli_case(fit_warning_distinct_clusters_json RC 0
  ARGS fit @DATA@/duplicates.csv --k 3 --json
  JSON_EQUAL "k=3" JSON_MATCH "warnings.0=number of distinct clusters \\(2\\) found smaller than k = 3")
kmeans_cli_case(fit_warning_distinct_clusters_human RC 0
  ARGS fit @DATA@/duplicates.csv --k 3 STDERR_LINES 1
  STDERR_EVERY_LINE "^kmeans: warning: number of distinct clusters \\(2\\)")
# --verbose: exactly one stderr line per iteration; stdout stays one JSON object.
set(VERBOSE_LINE "^kmeans: iteration [1-9][0-9]*: sse [0-9.e+-]+, center shift [0-9.e+-]+, [0-9.e+-]+ s$")
kmeans_cli_case(fit_verbose_json RC 0
  ARGS fit --backend cpu @DATA@/tiny.csv --init @DATA@/tiny_init.npy --verbose --json
  JSON_EQUAL "n_iter=2" STDERR_LINES n_iter STDERR_EVERY_LINE "${VERBOSE_LINE}"
  EXPECT_STDERR "^kmeans: iteration 1: sse 4, .*\nkmeans: iteration 2: sse 2.66666666666666")
kmeans_cli_case(fit_verbose_max_iter RC 0
  ARGS fit --backend cpu @DATA@/tiny.npy --k 2 --init random --max-iter 1 --tol 0 --verbose --json
  JSON_EQUAL "n_iter=1" STDERR_LINES n_iter STDERR_EVERY_LINE "${VERBOSE_LINE}")
kmeans_cli_case(fit_verbose_max_iter_zero RC 0
  ARGS fit --backend cpu @DATA@/tiny.npy --init @DATA@/tiny_init.npy --max-iter 0 --verbose --json
  JSON_EQUAL "n_iter=0" STDERR_LINES 0)
kmeans_cli_case(fit_verbose_n_init RC 0
  ARGS fit --backend cpu @DATA@/tiny.npy --k 2 --n-init 2 --verbose
  EXPECT_STDOUT "n_init 2" STDERR_LINES 4
  STDERR_EVERY_LINE "^kmeans: init [12]/2, iteration [12]: sse ")
kmeans_cli_case(fit_verbose_human RC 0
  ARGS fit --backend cpu @DATA@/tiny.npy --init @DATA@/tiny_init.npy --verbose
  EXPECT_STDOUT "^kmeans fit: .*converged after 2 iterations" STDERR_LINES 2
  STDERR_EVERY_LINE "${VERBOSE_LINE}")

# --- transform and score -----------------------------------------------------------------------
# tiny against tiny_init [(0,0), (10,10)]: distances 0 / sqrt(200), 1 / sqrt(181) twice,
# sqrt(200) / 0, sqrt(221) / 1 twice; inertia 4, weighted 5.
set(D0 "-1e-12,1e-12")
set(D1 "0.999999999,1.000000001")
set(D200 "14.142135623,14.142135624")
set(D181 "13.453624047,13.453624048")
set(D221 "14.866068747,14.866068748")
kmeans_cli_case(transform_csv RC 0
  ARGS transform @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --out @WORK@/dist.csv --json
  JSON_KEYS "backend|dtype|n|d|k|seconds|out" JSON_EQUAL "command=transform|n=6|d=2|k=2|dtype=float64"
  MATRIX_CSV @WORK@/dist.csv=6,2
  EXPECT_MATRIX "${D0}|${D200}|${D1}|${D181}|${D1}|${D181}|${D200}|${D0}|${D221}|${D1}|${D221}|${D1}")
kmeans_cli_case(transform_float32 RC 0
  ARGS transform @DATA@/tiny_f32.npy --centroids @DATA@/tiny_init.npy --out @WORK@/dist.csv
  EXPECT_STDOUT "k = 2 \\(float32, backend [a-z]+\\).*6 x 2 distances written to"
  MATRIX_CSV @WORK@/dist.csv=6,2
  EXPECT_MATRIX "${D0}|14.14213,14.14214|${D1}|13.45362,13.45363|${D1}|13.45362,13.45363|14.14213,14.14214|${D0}|14.86606,14.86607|${D1}|14.86606,14.86607|${D1}")
kmeans_cli_case(transform_npy_matches_csv RC 0
  PRE transform @DATA@/tiny.npy --centroids @DATA@/tiny_init.npy --out @WORK@/dist.csv
  ARGS transform @DATA@/tiny.npy --centroids @DATA@/tiny_init.npy --out @WORK@/dist.npy --json
  JSON_EQUAL "k=2|out=@WORK@/dist.npy")
kmeans_cli_case(transform_preview RC 0
  ARGS transform @DATA@/tiny.npy --centroids @DATA@/tiny_init.npy
  EXPECT_STDOUT "\n0: 0 14.1421\n1: 1 13.4536\n2: 1 13.4536\n3: 14.1421 0\n4: 14.8661 1\n\\.\\.\\. 1 more rows; use --out")
set(R2 "0.471404520,0.471404521")
set(R5 "0.745355992,0.745355993")
kmeans_cli_case(transform_after_fit RC 0
  PRE fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --centroids-out @WORK@/c.csv
  ARGS transform @DATA@/tiny.npy --centroids @WORK@/c.csv --out @WORK@/dist.csv
  # From the means (1/3, 1/3) and (31/3, 31/3): sqrt(2)/3, sqrt(5)/3 for the near centroid;
  # sqrt(2) * 31/3, sqrt(1745)/3 (twice), sqrt(2) * 29/3, sqrt(1865)/3 (twice) for the far one.
  MATRIX_CSV @WORK@/dist.csv=6,2
  EXPECT_MATRIX "${R2}|14.613540144,14.613540145|${R5}|13.924399049,13.924399050|${R5}|13.924399049,13.924399050|13.670731102,13.670731103|${R2}|14.395215254,14.395215255|${R5}|14.395215254,14.395215255|${R5}")
kmeans_cli_case(score_json RC 0
  ARGS score @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --json
  JSON_KEYS "backend|dtype|n|d|k|score|seconds|sample_weight"
  JSON_EQUAL "command=score|n=6|d=2|k=2|sample_weight=null" JSON_RANGE "score=-4.000000001,-3.999999999")
kmeans_cli_case(score_weighted RC 0
  ARGS score @DATA@/tiny.npy --centroids @DATA@/tiny_init.npy --sample-weight @DATA@/weights_tiny_col.csv --json
  JSON_RANGE "score=-5.000000001,-4.999999999")
kmeans_cli_case(score_matches_fit_inertia RC 0
  PRE fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --sample-weight @DATA@/weights_tiny.npy
      --centroids-out @WORK@/c.npy
  ARGS score @DATA@/tiny.npy --centroids @WORK@/c.npy --sample-weight @DATA@/weights_tiny.npy --json
  JSON_RANGE "score=-3.2500000001,-3.2499999999")
kmeans_cli_case(score_human RC 0
  ARGS score @DATA@/tiny_f32.npy --centroids @DATA@/tiny_init.npy
  EXPECT_STDOUT "kmeans score: n = 6, d = 2, k = 2 \\(float32, .*\nscore -4 \\(the negative inertia\\)")
kmeans_cli_case(transform_help RC 0 ARGS transform --help EXPECT_STDOUT "--out PATH.*first 5 rows")
kmeans_cli_case(score_help RC 0 ARGS score --help EXPECT_STDOUT "negative.*--sample-weight PATH")
kmeans_cli_case(fit_help_estimator RC 0 ARGS fit --help
  EXPECT_STDOUT "k-means\\|\\|.*--n-init N.*--sample-weight PATH.*--verbose.*warnings")
kmeans_cli_case(help_lists_commands RC 0 ARGS --help EXPECT_STDOUT "kmeans transform DATA.*kmeans score DATA")

# --- bad data: exit code 1 ---------------------------------------------------------------------
foreach(spec
    "nan_in_csv|bad_nan.csv|NaN at row 1, column 1"
    "inf_in_npy|bad_inf.npy|Inf at row 4, column 1"
    "zero_features|bad_cols0.npy|d = 0 features"
    "one_dimensional|bad_1d.npy|1-D with shape \\(5,\\)"
    "int64|bad_int64.npy|unsupported dtype '<i8' \\(int64\\)"
    "big_endian|bad_bigendian.npy|big-endian dtype '>f8'"
    "fortran_order|bad_fortran.npy|Fortran-order"
    "object_array|bad_object.npy|object arrays"
    "truncated_header|bad_truncated_header.npy|truncated .npy header"
    "huge_header|bad_huge_header.npy|header length 2147483647 bytes exceeds"
    "truncated_data|bad_truncated_data.npy|truncated data: shape \\(6, 2\\)"
    "extra_data|bad_extra_data.npy|extra data"
    "overflowing_shape|bad_overflow_shape.npy|overflows"
    "empty_npy|bad_empty.npy|empty"
    "empty_csv|bad_empty.csv|empty"
    "ragged_csv|bad_ragged.csv|line 3 has 1 fields, expected 2"
    "text_in_csv|bad_text.csv|line 3, column 2: 'abc' is not a number"
    "empty_field_csv|bad_empty_field.csv|line 2, column 2: empty field"
    "missing_file|no_such_file.csv|no_such_file.csv: cannot open")
  string(REPLACE "|" ";" spec "${spec}")
  list(GET spec 0 name)
  list(GET spec 1 file)
  list(GET spec 2 re)
  kmeans_cli_case(bad_${name} RC 1 ARGS fit @DATA@/${file} --k 1 ${OUT} EXPECT_STDERR "${re}")
endforeach()
kmeans_cli_case(bad_k_exceeds_n RC 1 ARGS fit @DATA@/tiny.csv --k 7 ${OUT}
  EXPECT_STDERR "k = 7 exceeds the number of samples n = 6")
kmeans_cli_case(bad_init_shape RC 1 ARGS fit @DATA@/tiny.csv --k 2 --init @DATA@/bad_init_shape.npy ${OUT}
  EXPECT_STDERR "has shape \\(2, 3\\), but k = 2 and d = 2 need \\(2, 2\\)")
kmeans_cli_case(bad_init_rows RC 1 ARGS fit @DATA@/tiny.csv --k 3 --init @DATA@/tiny_init.npy ${OUT}
  EXPECT_STDERR "need \\(3, 2\\)")
kmeans_cli_case(bad_float32_overflow RC 1
  ARGS fit @DATA@/big_for_float32.csv --k 2 --dtype float32 ${OUT}
  EXPECT_STDERR "1e\\+300 at row 1, column 0 is out of the float32 range")
kmeans_cli_case(bad_output_directory RC 1 ARGS fit @DATA@/tiny.csv --k 2 --labels-out @WORK@/no/l.npy
  EXPECT_STDERR "directory .* does not exist")
kmeans_cli_case(bad_predict_dimensions RC 1
  ARGS predict @DATA@/tiny.csv --centroids @DATA@/centroids_d3.npy --labels-out @WORK@/l.npy
  EXPECT_STDERR "has d = 3 features .* has d = 2")
if(KMEANS_WITH_CUDA)
  # Whether a GPU is usable is only known at run time: the CUDA tests cover --backend cuda.
else()
  kmeans_cli_case(bad_backend_cuda_unavailable RC 1 ARGS fit @DATA@/tiny.csv --k 2 --backend cuda ${OUT}
    EXPECT_STDERR "--backend cuda is not usable: .*without the CUDA backend")
endif()

# Sample weights: unreadable, wrong shape or length, or values the library rejects.
foreach(spec
    "missing|no_such_weights.npy|no_such_weights.npy: cannot open"
    "ragged|bad_weights_ragged.csv|bad_weights_ragged.csv: line 3 has 2 fields, expected 1"
    "two_columns|bad_weights_2d.npy|shape \\(6, 2\\); expected a 1-D array \\(n,\\) or a column \\(n, 1\\)"
    "wrong_length|bad_weights_short.npy|bad_weights_short.npy has 5 values but .*tiny.csv has n = 6 rows"
    "negative|bad_weights_negative.npy|--sample-weight .*bad_weights_negative.npy: sample_weight\\[2\\] = -1 is negative"
    "nan|bad_weights_nan.csv|--sample-weight .*bad_weights_nan.csv: sample_weight contains NaN at row 1"
    "zero_total|bad_weights_zero.npy|sample_weight sums to 0"
    "int_dtype|numpy_i4_1d.npy|unsupported dtype '<i4' \\(int32\\)")
  string(REPLACE "|" ";" spec "${spec}")
  list(GET spec 0 name)
  list(GET spec 1 file)
  list(GET spec 2 re)
  kmeans_cli_case(bad_weights_${name} RC 1
    ARGS fit @DATA@/tiny.csv --k 2 --sample-weight @DATA@/${file} --verbose ${OUT} EXPECT_STDERR "${re}")
endforeach()
kmeans_cli_case(bad_score_weights_negative RC 1
  ARGS score @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --sample-weight @DATA@/bad_weights_negative.npy
  EXPECT_STDERR "sample_weight\\[2\\] = -1 is negative")
kmeans_cli_case(bad_score_weights_length RC 1
  ARGS score @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --sample-weight @DATA@/bad_weights_short.npy
  EXPECT_STDERR "has 5 values but .* has n = 6 rows")
kmeans_cli_case(bad_k_exceeds_n_parallel RC 1 ARGS fit @DATA@/tiny.csv --k 7 --init k-means|| ${OUT}
  EXPECT_STDERR "k = 7 exceeds the number of samples n = 6")
kmeans_cli_case(bad_transform_dimensions RC 1
  ARGS transform @DATA@/tiny.csv --centroids @DATA@/centroids_d3.npy --out @WORK@/dist.npy
  EXPECT_STDERR "has d = 3 features .* has d = 2")
kmeans_cli_case(bad_score_dimensions RC 1
  ARGS score @DATA@/tiny.csv --centroids @DATA@/centroids_d3.npy --json
  EXPECT_STDERR "has d = 3 features .* has d = 2")
kmeans_cli_case(bad_transform_data RC 1
  ARGS transform @DATA@/bad_nan.csv --centroids @DATA@/tiny_init.npy --out @WORK@/dist.csv
  EXPECT_STDERR "NaN at row 1, column 1")
kmeans_cli_case(bad_transform_centroids_file RC 1
  ARGS transform @DATA@/tiny.csv --centroids @DATA@/bad_inf.npy --out @WORK@/dist.csv
  EXPECT_STDERR "bad_inf.npy: Inf at row 4, column 1")
kmeans_cli_case(bad_transform_output_directory RC 1
  ARGS transform @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --out @WORK@/no/dist.npy
  EXPECT_STDERR "directory .* does not exist")

# --- bad command lines: exit code 2 ------------------------------------------------------------
foreach(spec
    "k_zero|--k|0|--k '0' is out of range: expected an integer from 1 to 2147483647"
    "k_negative|--k|-1|--k '-1' is out of range: expected an integer from 1 to"
    "k_text|--k|abc|--k 'abc' is not an integer: expected an integer from 1 to"
    "k_suffix|--k|3x|--k '3x' is not an integer"
    "k_too_large|--k|99999999999|out of range"
    "max_iter_negative|--max-iter|-1|--max-iter '-1' is out of range: expected an integer from 0 to 2147483647"
    "tol_nan|--tol|nan|--tol nan must be finite"
    "tol_negative|--tol|-1e-3|--tol -1e-3 must be finite and >= 0"
    "seed_negative|--seed|-1|--seed '-1' is out of range: expected an integer from 0 to 18446744073709551615"
    "seed_too_large|--seed|18446744073709551616|--seed '18446744073709551616' is out of range: expected an integer from 0 to 18446744073709551615"
    "seed_text|--seed|-x|--seed '-x' is not an integer: expected an integer from 0 to"
    "threads_negative|--threads|-2|--threads '-2' is out of range: expected an integer from 0 to 1024"
    "threads_too_many|--threads|1025|--threads '1025' is out of range: expected an integer from 0 to 1024"
    "threads_huge|--threads|100000|--threads '100000' is out of range: expected an integer from 0 to 1024"
    "unknown_backend|--backend|tpu|--backend 'tpu' is unknown"
    "unknown_dtype|--dtype|int8|--dtype 'int8' is unknown"
    "unknown_init|--init|kmeans|--init 'kmeans' is unknown"
    "batch_size_zero|--batch-size|0|--batch-size '0' is out of range: expected an integer from 1 to 2147483647"
    "batch_size_negative|--batch-size|-5|--batch-size '-5' is out of range: expected an integer from 1 to"
    "batch_size_text|--batch-size|many|--batch-size 'many' is not an integer"
    "max_no_improvement_negative|--max-no-improvement|-1|--max-no-improvement '-1' is out of range: expected an integer from 0 to 2147483647"
    "reassignment_ratio_negative|--reassignment-ratio|-0.1|--reassignment-ratio -0.1 must be finite and >= 0"
    "reassignment_ratio_inf|--reassignment-ratio|inf|--reassignment-ratio inf must be finite and >= 0")
  string(REPLACE "|" ";" spec "${spec}")
  list(GET spec 0 name)
  list(GET spec 1 flag)
  list(GET spec 2 value)
  list(GET spec 3 re)
  set(k_arg --k 2)
  if(flag STREQUAL "--k")
    set(k_arg "")
  endif()
  kmeans_cli_case(usage_${name} RC 2 ARGS fit @DATA@/tiny.csv ${k_arg} ${OUT} ${flag} ${value}
    EXPECT_STDERR "${re}")
endforeach()
kmeans_cli_case(usage_duplicate_option RC 2 ARGS fit @DATA@/tiny.csv --k 2 --k 3 EXPECT_STDERR "--k is given more than once")
kmeans_cli_case(usage_unknown_flag RC 2 ARGS fit @DATA@/tiny.csv --k 2 --foo ${OUT}
  EXPECT_STDERR "unknown option '--foo'")
kmeans_cli_case(usage_missing_value RC 2 ARGS fit @DATA@/tiny.csv --labels-out @WORK@/l.npy --k
  EXPECT_STDERR "option --k needs a value")
kmeans_cli_case(usage_value_is_a_flag RC 2 ARGS fit @DATA@/tiny.csv --k --json ${OUT}
  EXPECT_STDERR "option --k needs a value")
kmeans_cli_case(usage_missing_k RC 2 ARGS fit @DATA@/tiny.csv ${OUT} EXPECT_STDERR "--k is required")
kmeans_cli_case(usage_missing_data RC 2 ARGS fit --k 2 ${OUT} EXPECT_STDERR "missing DATA file")
kmeans_cli_case(usage_extra_argument RC 2 ARGS fit @DATA@/tiny.csv @DATA@/tiny.npy --k 2 ${OUT}
  EXPECT_STDERR "unexpected extra argument")
kmeans_cli_case(usage_data_extension RC 2 ARGS fit @DATA@/make_data.py --k 2 ${OUT}
  EXPECT_STDERR "expected a .npy or .csv file")
# A bare `kmeans`: the short usage (commands, the most used flags) on stderr, exit code 2.
kmeans_cli_case(usage_no_command RC 2 ARGS ""
  STDERR_USAGE "^usage: kmeans COMMAND DATA .*kmeans fit .*kmeans predict .*kmeans transform .*kmeans score .*-k/--k K.*--help")
kmeans_cli_case(usage_unknown_command RC 2 ARGS train @DATA@/tiny.csv EXPECT_STDERR "unknown command 'train'")
kmeans_cli_case(usage_predict_without_centroids RC 2 ARGS predict @DATA@/tiny.csv --labels-out @WORK@/l.npy
  EXPECT_STDERR "--centroids or --model is required")
kmeans_cli_case(usage_output_extension RC 2 ARGS fit @DATA@/tiny.csv --k 2 --labels-out @WORK@/l.npy
  --centroids-out c.txt EXPECT_STDERR "--centroids-out 'c.txt': expected a file name ending in .npy or .csv")
kmeans_cli_case(usage_same_output RC 2 ARGS fit @DATA@/tiny.csv --k 2 --labels-out @WORK@/x.npy
  --centroids-out @WORK@/x.npy EXPECT_STDERR "name the same file")

foreach(spec
    "n_init_zero|0|--n-init '0' is out of range: expected an integer from 1 to 2147483647"
    "n_init_negative|-3|--n-init '-3' is out of range: expected an integer from 1 to"
    "n_init_text|many|--n-init 'many' is not an integer"
    "n_init_huge|3000000000|--n-init '3000000000' is out of range")
  string(REPLACE "|" ";" spec "${spec}")
  list(GET spec 0 name)
  list(GET spec 1 value)
  list(GET spec 2 re)
  kmeans_cli_case(usage_${name} RC 2 ARGS fit @DATA@/tiny.csv --k 2 ${OUT} --n-init ${value}
    EXPECT_STDERR "${re}")
endforeach()
set(bad_inits "k-means|" "k-means+" "parallel" "k-means||x")
set(bad_init_cases one_bar one_plus parallel bars_suffix)
foreach(init case IN ZIP_LISTS bad_inits bad_init_cases)
  kmeans_cli_case(usage_unknown_init_${case} RC 2 ARGS fit @DATA@/tiny.csv --k 2 ${OUT} --init ${init}
    EXPECT_STDERR "--init '.*' is unknown: expected k-means\\+\\+ \\(kmeans\\+\\+\\), random, k-means\\|\\|")
endforeach()
kmeans_cli_case(usage_sample_weight_extension RC 2
  ARGS fit @DATA@/tiny.csv --k 2 ${OUT} --sample-weight @DATA@/make_data.py
  EXPECT_STDERR "--sample-weight '.*make_data.py': expected a .npy or .csv file")
kmeans_cli_case(usage_sample_weight_twice RC 2
  ARGS score @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --sample-weight @DATA@/weights_tiny.npy
       --sample-weight @DATA@/weights_tiny.npy
  EXPECT_STDERR "--sample-weight is given more than once")
kmeans_cli_case(usage_sample_weight_missing_value RC 2 ARGS fit @DATA@/tiny.csv --k 2 ${OUT} --sample-weight
  EXPECT_STDERR "option --sample-weight needs a value")
kmeans_cli_case(usage_transform_without_centroids RC 2 ARGS transform @DATA@/tiny.csv --out @WORK@/dist.npy
  EXPECT_STDERR "--centroids or --model is required for transform")
kmeans_cli_case(usage_score_without_centroids RC 2 ARGS score @DATA@/tiny.csv --json
  EXPECT_STDERR "--centroids or --model is required for score")
kmeans_cli_case(usage_transform_out_extension RC 2
  ARGS transform @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --out @WORK@/dist.txt
  EXPECT_STDERR "--out '.*dist.txt': expected a file name ending in .npy or .csv")
kmeans_cli_case(usage_transform_fit_option RC 2
  ARGS transform @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --k 2 --out @WORK@/dist.npy
  EXPECT_STDERR "unknown option '--k' for kmeans transform")
kmeans_cli_case(usage_predict_verbose RC 2
  ARGS predict @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --verbose --labels-out @WORK@/l.npy
  EXPECT_STDERR "unknown option '--verbose' for kmeans predict")
kmeans_cli_case(usage_score_out RC 2
  ARGS score @DATA@/tiny.csv --centroids @DATA@/tiny_init.npy --out @WORK@/s.npy
  EXPECT_STDERR "unknown option '--out' for kmeans score")
kmeans_cli_case(usage_fit_out RC 2 ARGS fit @DATA@/tiny.csv --k 2 --out @WORK@/dist.npy
  EXPECT_STDERR "unknown option '--out' for kmeans fit")

# --- short flags, standard input, JSON numbers, thread bound -----------------------------------
set(short_k_spellings "-k|2" "-k=2" "-k2")
set(short_k_cases space equals attached)
foreach(spelling case IN ZIP_LISTS short_k_spellings short_k_cases)
  string(REPLACE "|" ";" k_args "${spelling}")
  kmeans_cli_case(fit_short_k_${case} RC 0 ARGS fit @DATA@/tiny.npy ${k_args} --json JSON_EQUAL "k=2|n=6")
endforeach()
kmeans_cli_case(usage_short_k_zero RC 2 ARGS fit @DATA@/tiny.npy -k 0 ${OUT}
  EXPECT_STDERR "--k '0' is out of range")
kmeans_cli_case(fit_stdin_npy RC 0 ARGS fit - --init @DATA@/tiny_init.npy --json
  --labels-out @WORK@/labels.npy STDIN_FILE @DATA@/tiny.npy
  JSON_EQUAL "n=6|d=2|k=2|dtype=float64|n_iter=2" JSON_RANGE "${TINY_INERTIA}"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1)
kmeans_cli_case(fit_stdin_f32_npy RC 0 ARGS fit - -k 2 --json STDIN_FILE @DATA@/tiny_f32.npy
  JSON_EQUAL "n=6|d=2|dtype=float32")
kmeans_cli_case(fit_stdin_csv RC 0 ARGS fit - --init @DATA@/tiny_init.npy --json
  STDIN_FILE @DATA@/tiny.csv JSON_EQUAL "n=6|d=2|k=2|dtype=float64" JSON_RANGE "${TINY_INERTIA}")
kmeans_cli_case(predict_stdin RC 0 ARGS predict - --centroids @DATA@/tiny_init.npy
  --labels-out @WORK@/labels.npy --json STDIN_FILE @DATA@/tiny.csv
  JSON_EQUAL "n=6|k=2" LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1)
kmeans_cli_case(bad_stdin_nan RC 1 ARGS fit - -k 1 ${OUT} STDIN_FILE @DATA@/bad_nan.csv
  EXPECT_STDERR "<stdin>: NaN at row 1, column 1")
kmeans_cli_case(bad_stdin_truncated_npy RC 1 ARGS fit - -k 1 ${OUT}
  STDIN_FILE @DATA@/bad_truncated_data.npy EXPECT_STDERR "<stdin>: truncated data: shape \\(6, 2\\)")
kmeans_cli_case(bad_stdin_empty RC 1 ARGS fit - -k 1 ${OUT} STDIN_FILE @DATA@/bad_empty.csv
  EXPECT_STDERR "<stdin>: is empty")
# JSON numbers in the shortest form that reads back (as the .csv outputs): not %.17g's
# 0.00010236200000000000 or 0.00010000000000000000.
kmeans_cli_case(json_shortest_numbers RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --tol 0.000102362 --sample-weight @DATA@/weights_tiny.npy --json
  EXPECT_STDOUT "\"tol\": 0\\.000102362, .*\"inertia\": 3\\.25, ")
kmeans_cli_case(json_shortest_default_tol RC 0 ARGS fit @DATA@/tiny.npy -k 2 --json
  EXPECT_STDOUT "\"tol\": 1e-04, ")
kmeans_cli_case(fit_threads_at_limit RC 0 ARGS fit @DATA@/tiny.npy -k 2 --threads 1024 --json
  JSON_EQUAL "k=2")

# --- outputs that are inputs, or each other, under another spelling or through a link ----------
set(COPY_TINY "@DATA@/tiny.npy=@WORK@/d.npy|@DATA@/tiny.npy=@WORK@/d_orig.npy|@DATA@/tiny_init.npy=@WORK@/init.npy|@DATA@/tiny_init.npy=@WORK@/init_orig.npy")
foreach(spec
    "labels_data|fit @WORK@/d.npy -k 2 --labels-out @WORK@/./d.npy|--labels-out '.*/\\./d.npy' is the same file as DATA"
    "labels_data_dotdot|fit @WORK@/d.npy -k 2 --labels-out @WORK@/sub/../d.npy|is the same file as DATA"
    "labels_data_symlink|fit @WORK@/d.npy -k 2 --labels-out @WORK@/link.npy|--labels-out '.*link.npy' is the same file as DATA '.*d.npy'"
    "centroids_out_init|fit @WORK@/d.npy --init @WORK@/init.npy --centroids-out ./init.npy|--centroids-out './init.npy' is the same file as --init"
    "transform_out_data|transform @WORK@/d.npy --centroids @WORK@/init.npy --out d.npy|--out 'd.npy' is the same file as DATA"
    "transform_out_centroids|transform @WORK@/d.npy --centroids @WORK@/init.npy --out @WORK@/link_init.npy|is the same file as --centroids"
    "predict_labels_centroids|predict @WORK@/d.npy --centroids @WORK@/init.npy --labels-out ./init.npy|--labels-out './init.npy' is the same file as --centroids"
    "labels_weights|fit @WORK@/d.npy -k 2 --sample-weight @WORK@/w.npy --labels-out ./w.npy|--labels-out './w.npy' is the same file as --sample-weight"
    "two_outputs|fit @WORK@/d.npy -k 2 --labels-out @WORK@/x.npy --centroids-out ./x.npy|--centroids-out './x.npy' and --labels-out '.*x.npy' name the same file")
  string(REPLACE "|" ";" spec "${spec}")
  list(GET spec 0 name)
  list(GET spec 1 cmd)
  list(GET spec 2 re)
  string(REPLACE " " ";" cmd "${cmd}")
  kmeans_cli_case(usage_same_file_${name} RC 2 ARGS ${cmd} EXPECT_STDERR "${re}"
    COPY_FILES "${COPY_TINY}|@DATA@/weights_tiny.npy=@WORK@/w.npy"
    SYMLINKS "@WORK@/d.npy=@WORK@/link.npy|@WORK@/init.npy=@WORK@/link_init.npy"
    SAME_FILES "@WORK@/d.npy|@WORK@/d_orig.npy")
endforeach()
kmeans_cli_case(init_untouched_by_refused_centroids_out RC 2
  ARGS fit @WORK@/d.npy --init @WORK@/init.npy --centroids-out @WORK@/link_init.npy
  COPY_FILES "${COPY_TINY}" SYMLINKS "@WORK@/init.npy=@WORK@/link_init.npy"
  EXPECT_STDERR "--centroids-out '.*link_init.npy' is the same file as --init"
  SAME_FILES "@WORK@/init.npy|@WORK@/init_orig.npy")

# --- model files: fit --model-out, predict / transform / score --model -----------------------
set(FIT_MODEL fit @DATA@/tiny.csv --init @DATA@/tiny_init.npy --model-out @WORK@/m.kmeans)
kmeans_cli_case(model_out_fit_json RC 0
  ARGS fit @DATA@/tiny.csv --init @DATA@/tiny_init.npy --model-out @WORK@/m.kmeans --json
  JSON_MATCH "model_out=.*/m.kmeans$" JSON_EQUAL "k=2")
kmeans_cli_case(model_out_fit_summary RC 0
  ARGS fit @DATA@/tiny.csv -k 2 --model-out @WORK@/m.kmeans EXPECT_STDOUT "model written to .*m.kmeans")
kmeans_cli_case(model_predict_matches_fit RC 0
  PRE fit @DATA@/tiny.npy --k 2 --seed 3 --model-out @WORK@/m.kmeans --labels-out @WORK@/fit.npy
  ARGS predict @DATA@/tiny.npy --model @WORK@/m.kmeans --labels-out @WORK@/predict.npy --json
  JSON_KEYS "${PREDICT_KEYS}|model" JSON_EQUAL "n=6|d=2|k=2|dtype=float64" JSON_MATCH "model=.*/m.kmeans$"
  LABELS_NPY @WORK@/predict.npy=6,2 SAME_FILES "@WORK@/fit.npy|@WORK@/predict.npy")
kmeans_cli_case(model_transform RC 0 PRE ${FIT_MODEL}
  ARGS transform @DATA@/tiny.csv --model @WORK@/m.kmeans --out @WORK@/dist.csv
  MATRIX_CSV @WORK@/dist.csv=6,2
  EXPECT_MATRIX "0.471404,0.471405|14.613540,14.613541|0.745355,0.745356|13.924399,13.924400|0.745355,0.745356|13.924399,13.924400|13.670731,13.670732|0.471404,0.471405|14.395215,14.395216|0.745355,0.745356|14.395215,14.395216|0.745355,0.745356")
kmeans_cli_case(model_score RC 0 PRE ${FIT_MODEL}
  ARGS score @DATA@/tiny.csv --model @WORK@/m.kmeans --json
  JSON_RANGE "score=-2.6666666667,-2.6666666666" JSON_MATCH "model=.*/m.kmeans$")
kmeans_cli_case(model_float32_converts_data RC 0
  PRE fit @DATA@/tiny_f32.npy --k 2 --model-out @WORK@/m.kmeans
  ARGS predict @DATA@/tiny.csv --model @WORK@/m.kmeans --json JSON_EQUAL "dtype=float32|k=2")
kmeans_cli_case(bad_model_dtype_flag RC 1 PRE ${FIT_MODEL}
  ARGS predict @DATA@/tiny.csv --model @WORK@/m.kmeans --dtype float32
  EXPECT_STDERR "--dtype float32 but --model .*m.kmeans is a float64 model")
kmeans_cli_case(bad_model_d_mismatch RC 1 PRE ${FIT_MODEL}
  ARGS predict @DATA@/centroids_d3.npy --model @WORK@/m.kmeans --labels-out @WORK@/l.npy
  EXPECT_STDERR "--model .*m.kmeans has d = 2 features \\(k = 2\\) but .*centroids_d3.npy has d = 3")
kmeans_cli_case(bad_model_foreign RC 1 ARGS score @DATA@/tiny.csv --model @DATA@/tiny_init.npy
  EXPECT_STDERR "model file '.*tiny_init.npy': is not a kmeans model file")
kmeans_cli_case(bad_model_missing RC 1 ARGS transform @DATA@/tiny.csv --model @WORK@/none.kmeans
  EXPECT_STDERR "cannot open model file '.*none.kmeans'")
kmeans_cli_case(bad_model_truncated RC 1 ARGS predict @DATA@/tiny.csv --model @WORK@/m.kmeans
  WRITE_FILES "m.kmeans={\"format\": \"kmeans-model\", \"format_version\": 1, \"dtype\": \"float64\", \"k\": 2"
  EXPECT_STDERR "model file '.*m.kmeans': truncated: the file ends")
kmeans_cli_case(bad_model_newer RC 1 ARGS predict @DATA@/tiny.csv --model @WORK@/m.kmeans
  WRITE_FILES "m.kmeans={\"format\": \"kmeans-model\", \"format_version\": 2, \"dtype\": \"float64\"}"
  EXPECT_STDERR "written by a newer kmeans \\(model format version 2")
kmeans_cli_case(bad_model_nan RC 1 ARGS predict @DATA@/tiny.csv --model @WORK@/m.kmeans
  WRITE_FILES "m.kmeans={\"format\": \"kmeans-model\", \"format_version\": 1, \"dtype\": \"float64\", \"centroids\": [[NaN]]}"
  EXPECT_STDERR "NaN is not a JSON number")
kmeans_cli_case(bad_fit_leaves_no_model RC 1 ARGS fit @DATA@/bad_nan.csv -k 1 --model-out @WORK@/m.kmeans
  EXPECT_STDERR "NaN at row 1, column 1")
kmeans_cli_case(bad_model_out_directory RC 1 ARGS fit @DATA@/tiny.csv -k 1 --model-out @WORK@/no/m.kmeans
  EXPECT_STDERR "does not exist")
kmeans_cli_case(usage_model_and_centroids RC 2
  ARGS predict @DATA@/tiny.csv --model @WORK@/m.kmeans --centroids @DATA@/tiny_init.npy
  EXPECT_STDERR "--centroids and --model both give the centroids: use one of them")
kmeans_cli_case(usage_model_or_centroids_required RC 2 ARGS score @DATA@/tiny.csv
  EXPECT_STDERR "--centroids or --model is required for score")
kmeans_cli_case(usage_model_out_matrix_name RC 2 ARGS fit @DATA@/tiny.csv -k 2 --model-out @WORK@/m.npy
  EXPECT_STDERR "--model-out '.*m.npy': a model file is JSON, not a matrix")
kmeans_cli_case(usage_model_not_for_fit RC 2 ARGS fit @DATA@/tiny.csv -k 2 --model @WORK@/m.kmeans
  EXPECT_STDERR "unknown option '--model' for kmeans fit")
kmeans_cli_case(usage_model_out_is_data RC 2 ARGS fit @WORK@/d.npy -k 2 --model-out @WORK@/link.kmeans
  COPY_FILES "${COPY_TINY}" SYMLINKS "@WORK@/d.npy=@WORK@/link.kmeans"
  EXPECT_STDERR "--model-out '.*link.kmeans' is the same file as DATA" SAME_FILES "@WORK@/d.npy|@WORK@/d_orig.npy")
kmeans_cli_case(usage_labels_out_is_model RC 2 PRE ${FIT_MODEL}
  ARGS predict @DATA@/tiny.csv --model @WORK@/m.kmeans --labels-out @WORK@/link.npy
  SYMLINKS "@WORK@/m.kmeans=@WORK@/link.npy"
  EXPECT_STDERR "--labels-out '.*link.npy' is the same file as --model")

# --- CSV header guess, --header / --no-header, line endings ------------------------------------
kmeans_cli_case(bad_csv_typo_in_first_row RC 1 ARGS fit @WORK@/t.csv -k 2 ${OUT}
  WRITE_FILES "t.csv=1,2O@NL@3,4@NL@5,6@NL@"
  EXPECT_STDERR "t.csv: line 1, column 2: '2O' is not a number \\(line 1 is read as data, not as a header, because its column 1 '1' is a number\\)")
kmeans_cli_case(bad_csv_centroids_typo_in_first_row RC 1
  ARGS predict @DATA@/tiny.csv --centroids @WORK@/c.csv
  WRITE_FILES "c.csv=0,O@NL@10,10@NL@" EXPECT_STDERR "c.csv: line 1, column 2: 'O' is not a number")
kmeans_cli_case(csv_header_forced RC 0 ARGS fit @WORK@/t.csv -k 1 --header --json
  WRITE_FILES "t.csv=1,2O@NL@3,4@NL@5,6@NL@" JSON_EQUAL "n=2|d=2")
kmeans_cli_case(csv_numeric_header_forced RC 0 ARGS fit @WORK@/t.csv -k 1 --header --json
  WRITE_FILES "t.csv=1,2@NL@3,4@NL@5,6@NL@" JSON_EQUAL "n=2|d=2")
kmeans_cli_case(csv_header_guessed RC 0 ARGS fit @WORK@/t.csv -k 1 --json
  WRITE_FILES "t.csv=x,y@NL@3,4@NL@5,6@NL@" JSON_EQUAL "n=2|d=2")
kmeans_cli_case(bad_csv_no_header_forced RC 1 ARGS fit @WORK@/t.csv -k 1 --no-header ${OUT}
  WRITE_FILES "t.csv=x,y@NL@3,4@NL@5,6@NL@" EXPECT_STDERR "t.csv: line 1, column 1: 'x' is not a number[^(]*$")
kmeans_cli_case(csv_no_header_forced RC 0 ARGS score @WORK@/t.csv --centroids @DATA@/tiny_init.npy --no-header --json
  WRITE_FILES "t.csv=0,0@NL@0,1@NL@" JSON_EQUAL "n=2")
kmeans_cli_case(usage_header_contradiction RC 2 ARGS fit @DATA@/tiny.csv -k 2 --header --no-header ${OUT}
  EXPECT_STDERR "--header and --no-header contradict each other")
kmeans_cli_case(csv_cr_line_endings RC 0 ARGS fit @WORK@/t.csv --init @DATA@/tiny_init.npy --json
  WRITE_FILES "t.csv=x,y@CR@0,0@CR@0,1@CR@1,0@CR@10,10@CR@10,11@CR@11,10@CR@"
  JSON_EQUAL "n=6|d=2|n_iter=2" JSON_RANGE "${TINY_INERTIA}")
kmeans_cli_case(csv_mixed_line_endings RC 0 ARGS fit @WORK@/t.csv --init @DATA@/tiny_init.npy --json
  WRITE_FILES "t.csv=0,0@CR@@NL@0,1@NL@1,0@CR@10,10@CR@@NL@10,11@NL@11,10"
  JSON_EQUAL "n=6|d=2" JSON_RANGE "${TINY_INERTIA}")

# --- SIGTERM / SIGHUP during a write: the temporary is removed, the status is the signal's ----
# (SIGINT is covered by test_io: a background job of a non-interactive shell ignores it.)
if(UNIX)
  foreach(sig TERM HUP)
    add_test(NAME cli.signal_${sig}_removes_temporary
             COMMAND sh "${CMAKE_CURRENT_LIST_DIR}/signal_cleanup.sh" "$<TARGET_FILE:kmeans_cli>"
                     "${KMEANS_CLI_WORK}/signal_${sig}" ${sig})
    set_tests_properties(cli.signal_${sig}_removes_temporary PROPERTIES
                         LABELS "cpu;cli" TIMEOUT 150 SKIP_RETURN_CODE 77)
  endforeach()
endif()

# --- scikit-learn parity (tests/sklearn_parity.py), when scikit-learn is installed -------------
set(KMEANS_PARITY_PYTHON "/usr/bin/python3" CACHE FILEPATH "Python with numpy and scikit-learn for the parity test")
execute_process(COMMAND "${KMEANS_PARITY_PYTHON}" -c "import sklearn, numpy"
                RESULT_VARIABLE kmeans_has_sklearn OUTPUT_QUIET ERROR_QUIET)
if(kmeans_has_sklearn EQUAL 0)
  add_test(NAME cli.sklearn_parity
           COMMAND "${KMEANS_PARITY_PYTHON}" "${CMAKE_CURRENT_LIST_DIR}/../sklearn_parity.py"
                   --kmeans "$<TARGET_FILE:kmeans_cli>" --workdir "${KMEANS_CLI_WORK}/sklearn_parity")
  set_tests_properties(cli.sklearn_parity PROPERTIES LABELS "parity;cli" TIMEOUT 600)
else()
  message(STATUS "kmeans: ${KMEANS_PARITY_PYTHON} cannot import scikit-learn; the parity test is not registered")
endif()
