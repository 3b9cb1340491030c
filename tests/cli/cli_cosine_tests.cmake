# SPDX-License-Identifier: Apache-2.0
# CLI tests of --metric cosine (spherical k-means): fit, model files, predict, transform, score
# and the errors (included from tests/CMakeLists.txt after cli_tests.cmake, whose
# kmeans_cli_case it uses).
#
# cos.csv: three rows along (1, 0) at angles 0 and +-atan(0.1), at norms 1, ~2 and ~3, and
# three along (0, 1) at angles 0 and +-atan(0.1): from init (1, 0), (0, 1) the unit means are
# (1, 0) and (0, 1) (the angles cancel), the labels 0,0,0,1,1,1, and four rows are at cosine
# distance 1 - 1/sqrt(1.01) = 0.0049628, so the inertia is 4 times that, 0.0198512.
set(COS_FILES "cos.csv=1,0@NL@2,0.2@NL@3,-0.3@NL@0,1@NL@0.1,1@NL@-0.2,2@NL@|cos_init.csv=1,0@NL@0,1@NL@")
set(COS_INERTIA "inertia=0.019851,0.019852")
set(COS_FIT_MODEL fit @WORK@/cos.csv --init @WORK@/cos_init.csv --metric cosine --model-out @WORK@/m.kmeans)
set(ZERO "-0.000001,0.000001")
set(ONE "0.999999,1.000001")
set(NEAR "0.004962,0.004963")

kmeans_cli_case(fit_cosine_json RC 0 WRITE_FILES "${COS_FILES}"
  ARGS fit @WORK@/cos.csv --init @WORK@/cos_init.csv --metric cosine --json
       --labels-out @WORK@/labels.npy --centroids-out @WORK@/centroids.csv
  JSON_KEYS "${FIT_KEYS}|metric" JSON_EQUAL "metric=cosine|n=6|d=2|k=2|converged=ON|n_iter=1"
  JSON_RANGE "${COS_INERTIA}|sse_history.0=0.019851,0.019852"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1
  MATRIX_CSV @WORK@/centroids.csv=2,2 EXPECT_MATRIX "${ONE}|${ZERO}|${ZERO}|${ONE}")
kmeans_cli_case(fit_cosine_summary RC 0 WRITE_FILES "${COS_FILES}"
  ARGS fit @WORK@/cos.csv --init @WORK@/cos_init.csv --metric cosine --backend reference
  EXPECT_STDOUT "metric cosine.*inertia 0.0198512 \\(mean cosine distance")
kmeans_cli_case(fit_metric_defaults_to_euclidean RC 0
  ARGS fit @DATA@/tiny.npy --init @DATA@/tiny_init.npy --json
  JSON_EQUAL "metric=euclidean" JSON_RANGE "${TINY_INERTIA}")
kmeans_cli_case(predict_cosine_model RC 0 WRITE_FILES "${COS_FILES}" PRE ${COS_FIT_MODEL}
  ARGS predict @WORK@/cos.csv --model @WORK@/m.kmeans --json --labels-out @WORK@/labels.npy
  JSON_KEYS "${PREDICT_KEYS}|metric" JSON_EQUAL "metric=cosine|k=2" JSON_RANGE "${COS_INERTIA}"
  LABELS_NPY @WORK@/labels.npy=6,2 EXPECT_LABELS 0,0,0,1,1,1)
kmeans_cli_case(transform_cosine_model RC 0 WRITE_FILES "${COS_FILES}" PRE ${COS_FIT_MODEL}
  ARGS transform @WORK@/cos.csv --model @WORK@/m.kmeans --out @WORK@/d.csv --json
  JSON_EQUAL "metric=cosine"
  MATRIX_CSV @WORK@/d.csv=6,2
  EXPECT_MATRIX "${ZERO}|${ONE}|${NEAR}|0.900496,0.900497|${NEAR}|1.099503,1.099504|${ONE}|${ZERO}|0.900496,0.900497|${NEAR}|1.099503,1.099504|${NEAR}")
kmeans_cli_case(score_cosine_centroids RC 0 WRITE_FILES "${COS_FILES}"
  ARGS score @WORK@/cos.csv --centroids @WORK@/cos_init.csv --metric cosine --json
  JSON_EQUAL "metric=cosine" JSON_RANGE "score=-0.019852,-0.019851")
kmeans_cli_case(score_euclidean_centroids_differs RC 0 WRITE_FILES "${COS_FILES}"
  ARGS score @WORK@/cos.csv --centroids @WORK@/cos_init.csv --json
  JSON_EQUAL "metric=euclidean" JSON_RANGE "score=-6.19,-6.17")
kmeans_cli_case(bad_cosine_zero_row RC 1
  WRITE_FILES "z.csv=1,0@NL@0,1@NL@0,0@NL@1,1@NL@"
  ARGS fit @WORK@/z.csv --k 2 --metric cosine ${OUT}
  EXPECT_STDERR "metric = cosine: data row 2 has zero norm")
kmeans_cli_case(bad_cosine_zero_row_predict RC 1
  WRITE_FILES "z.csv=1,0@NL@0,0@NL@|c.csv=1,0@NL@0,1@NL@"
  ARGS predict @WORK@/z.csv --centroids @WORK@/c.csv --metric cosine --labels-out @WORK@/l.npy
  EXPECT_STDERR "metric = cosine: data row 1 has zero norm")
kmeans_cli_case(bad_metric_flag RC 2 ARGS fit @DATA@/tiny.csv --k 2 --metric manhattan ${OUT}
  EXPECT_STDERR "--metric 'manhattan' is unknown: expected euclidean or cosine")
kmeans_cli_case(bad_metric_against_model RC 1 WRITE_FILES "${COS_FILES}" PRE ${COS_FIT_MODEL}
  ARGS score @WORK@/cos.csv --model @WORK@/m.kmeans --metric euclidean
  EXPECT_STDERR "--metric euclidean but --model .*m.kmeans is a cosine model")
kmeans_cli_case(bad_cosine_model_d_mismatch RC 1 WRITE_FILES "${COS_FILES}" PRE ${COS_FIT_MODEL}
  ARGS predict @DATA@/centroids_d3.npy --model @WORK@/m.kmeans
  EXPECT_STDERR "--model .*m.kmeans has d = 2 features \\(k = 2\\) but .*centroids_d3.npy has d = 3")
