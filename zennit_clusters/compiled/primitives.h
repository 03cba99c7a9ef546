/*
 * The two O(N K D) primitives, for one type and instruction set (for_each_type.h):
 *     centred_linear:   out[n, m] = sum_i (x[n, i] - origin[i]) weight[m, i] + bias[m]
 *     centred_addcmul:  out[n, i] = sum_m g[n, m] first[m, i] + value (x[n, i] - origin[i]) sum_m g[n, m] second[m, i]
 * Rows are split over OpenMP threads.
 */
#include "rows.h"

static void NAME(centred_linear)(const T *x, const T *origin, const T *weight, const T *bias, T *out,
                                              Py_ssize_t n, Py_ssize_t d, Py_ssize_t k, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (Py_ssize_t row = 0; row < n; ++row)
        NAME(row_centred_linear)(x + row * d, origin, weight, bias, out + row * k, d, k);
}

static void NAME(centred_addcmul)(const T *x, const T *origin, const T *g, const T *first,
                                               const T *second, T value, T *out, Py_ssize_t n, Py_ssize_t d,
                                               Py_ssize_t k, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (Py_ssize_t row = 0; row < n; ++row)
        NAME(row_centred_addcmul)(x + row * d, origin, g + row * k, first, second, value, out + row * d, d, k);
}

#undef LANES
