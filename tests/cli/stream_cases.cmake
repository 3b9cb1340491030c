# SPDX-License-Identifier: Apache-2.0
# kmeans fit --stream (src/cli/stream_fit.cpp): a good run with its outputs checked, and the
# refusals (included from tests/CMakeLists.txt after cli_tests.cmake, whose helper it uses).

kmeans_cli_case(stream_fit_tiny RC 0
  ARGS fit @DATA@/tiny.npy --k 2 --init @DATA@/tiny_init.npy --stream --memory-limit 1G --json --backend cpu
       --labels-out @WORK@/labels.npy --centroids-out @WORK@/centroids.csv
  JSON_KEYS "${FIT_KEYS}|stream.memory_limit|stream.peak_rss|stream.automatic"
  JSON_EQUAL "n=6|d=2|k=2|dtype=float64|backend=cpu|n_iter=2|converged=ON|cluster_sizes.0=3|cluster_sizes.1=3|stream.memory_limit=1073741824|stream.automatic=OFF"
  JSON_RANGE "${TINY_INERTIA}"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1
  MATRIX_CSV @WORK@/centroids.csv=2,2 EXPECT_MATRIX "${THIRD}|${THIRD}|${THIRTY_ONE_THIRDS}|${THIRTY_ONE_THIRDS}")
kmeans_cli_case(stream_fit_text RC 0
  ARGS fit @DATA@/tiny_f32.npy --k 2 --init random --stream --backend cpu
  EXPECT_STDOUT "float32, backend cpu, init random, n_init 1, streamed.*peak resident memory [0-9.]+ MiB \\(--memory-limit [0-9.]+ MiB\\)")
kmeans_cli_case(usage_stream_stdin RC 2 ARGS fit - --k 2 --stream
  EXPECT_STDERR "--stream reads DATA in chunks from a .npy file, not from standard input")
kmeans_cli_case(usage_stream_csv RC 2 ARGS fit @DATA@/tiny.csv --k 2 --stream
  EXPECT_STDERR "--stream reads DATA in chunks from a .npy file; '.*tiny.csv' is not one")
kmeans_cli_case(usage_memory_limit_unit RC 2 ARGS fit @DATA@/tiny.npy --k 2 --stream --memory-limit 12X
  EXPECT_STDERR "--memory-limit '12X' has an unknown unit 'X': expected a byte count such as 24M")
kmeans_cli_case(usage_memory_limit_zero RC 2 ARGS fit @DATA@/tiny.npy --k 2 --stream --memory-limit 0
  EXPECT_STDERR "--memory-limit '0' must be more than 0")
kmeans_cli_case(stream_default_init RC 0 ARGS fit @DATA@/tiny.npy --k 2 --stream --json --backend cpu
  JSON_EQUAL "init=k-means++|n=6|k=2|backend=cpu" JSON_RANGE "${TINY_INERTIA}")
kmeans_cli_case(stream_minibatch_refused RC 1
  ARGS fit @DATA@/tiny.npy --k 2 --init random --stream --batch-size 2 ${OUT}
  EXPECT_STDERR "batch_size = 2: a streamed fit runs Lloyd's algorithm")
kmeans_cli_case(stream_memory_limit_too_small RC 1
  ARGS fit @DATA@/tiny.npy --k 2 --init random --stream --memory-limit 1M ${OUT}
  EXPECT_STDERR "memory_limit = 1048576 bytes [(]1.0 MiB[)] is too small for a streamed fit of n = 6, d = 2, k = 2")
kmeans_cli_case(stream_dtype_mismatch RC 1
  ARGS fit @DATA@/tiny.npy --k 2 --init random --stream --dtype float32 ${OUT}
  EXPECT_STDERR "--dtype float32 but .*tiny.npy holds float64 values: a streamed fit reads them as they are")
kmeans_cli_case(stream_fortran_refused RC 1
  ARGS fit @DATA@/bad_fortran.npy --k 2 --init random --stream ${OUT}
  EXPECT_STDERR "Fortran-order .npy files are not supported")
kmeans_cli_case(stream_nan_row RC 1
  ARGS fit @DATA@/bad_inf.npy --k 1 --init random --stream ${OUT}
  EXPECT_STDERR "data.*row [0-9]+")
# Cosine (numpy_v*.npy: 4 x 3 without a zero row): the streamed fit normalises as it reads.
kmeans_cli_case(stream_cosine_equals_in_memory RC 0
  PRE fit @DATA@/numpy_v1_f8.npy --k 2 --init k-means|| --metric cosine --backend cpu
      --centroids-out @WORK@/m.npy
  ARGS fit @DATA@/numpy_v1_f8.npy --k 2 --init k-means|| --metric cosine --stream --json
       --centroids-out @WORK@/s.npy
  JSON_EQUAL "metric=cosine|n=4|d=3|k=2|backend=cpu"
  SAME_FILES "@WORK@/m.npy|@WORK@/s.npy")
kmeans_cli_case(stream_cosine_labels_equal RC 0
  PRE fit @DATA@/numpy_v2_f4.npy --k 2 --init random --metric cosine --backend cpu
      --labels-out @WORK@/ml.npy
  ARGS fit @DATA@/numpy_v2_f4.npy --k 2 --init random --metric cosine --stream
       --labels-out @WORK@/sl.npy
  EXPECT_STDOUT "metric cosine, streamed"
  SAME_FILES "@WORK@/ml.npy|@WORK@/sl.npy")
kmeans_cli_case(stream_cosine_zero_row RC 1
  ARGS fit @DATA@/tiny.npy --k 2 --init random --metric cosine --stream ${OUT}
  EXPECT_STDERR "metric = cosine: data row 0 has zero norm")
kmeans_cli_case(usage_stream_with_mpi RC 2 ARGS fit @DATA@/tiny.npy --k 2 --stream --mpi
  EXPECT_STDERR "--stream does not combine with --mpi: each rank already reads only its own rows")
