// SPDX-License-Identifier: Apache-2.0
// Spherical k-means' arithmetic (Metric::Cosine): rows scaled onto the unit sphere, the check
// that a row already is unit, and the re-normalised centroid of a cluster mean.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "kmeans/kmeans.hpp"

namespace kmeans::detail {

/// The tolerance on |sum_j x_j^2 - 1| (formed in double) within which a row of T is taken as
/// unit already and left as it is: 4 epsilon(T) + 4 d epsilon(double). Every row this file
/// normalises lands within it, so normalising twice changes nothing (a fitted model's
/// centroids pass predict's normalisation bit for bit).
template <class T>
double unit_tolerance(std::int64_t d);

/// x (n x d, host) onto the unit sphere, into out (n x d, host; may be x itself): each row
/// divided by its Euclidean norm, formed in double in feature order after an exact power-of-two
/// prescaling by the row's largest |x_j| (no underflow or overflow). Rows already unit within
/// unit_tolerance are copied unchanged; rows holding a NaN or an infinity are copied unchanged
/// too, for the caller's validation to name. A row whose values are all 0 throws kmeans::Error
/// naming `what`, the row index and the cosine metric, unless a non-finite row comes before it
/// (the validation then names that). Deterministic whatever n_threads.
template <class T>
void normalise_rows(const T* x, std::int64_t n, std::int64_t d, T* out, const char* what,
                    int n_threads);

/// c (d values) := the unit vector in the direction of mean (d doubles), each coordinate
/// rounded once to T. Returns false, leaving c unchanged, when every mean value is 0 (the
/// cluster's directions cancel exactly).
template <class T>
bool unit_from_mean(const double* mean, std::int64_t d, T* c);

/// Data of a call with Metric::Cosine on the unit sphere: a normalised copy of host data, or of
/// device data (cuda/sphere.cu), held for the call.
template <class T>
struct SphereData {
  std::vector<T> host;          ///< the normalised host rows
  std::shared_ptr<void> device; ///< the normalised device rows (freed with the last copy)
  const T* data = nullptr;      ///< host.data() or the device rows
};

/// data (n x d, host or device memory) onto the unit sphere (normalise_rows' rules, in the same
/// bits on the device) into `out`; returns out.data: `data` itself when every row of host data
/// is unit already (no copy), else the normalised copy.
template <class T>
const T* to_sphere(const T* data, std::int64_t n, std::int64_t d, const char* what,
                   int n_threads, SphereData<T>& out);

/// normalise_rows on device data into a new device array; throws like normalise_rows (the
/// first zero row). Defined by the CUDA backend (cuda/sphere.cu); without it, throws.
template <class T>
std::shared_ptr<void> normalise_rows_device(const T* x, std::int64_t n, std::int64_t d,
                                            const char* what);

/// The message for a zero row (shared with the CUDA kernel's caller).
std::string zero_row_error(const char* what, std::int64_t row);

}  // namespace kmeans::detail
