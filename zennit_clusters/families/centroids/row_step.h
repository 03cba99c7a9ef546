/*
 * The k-means row step, for one type and instruction set (zennit_clusters/compiled/for_each_type.h): from a row
 * of X to its label, logits and relevance, the fused form of the torch path in explainer.py.
 */
#include "rows.h"

/*
 * From the scores s of one row to its logits f, its label (returned; -1 if not finite) and the origin weights
 * g of its explanation: the same steps as CentroidExplainer._forward_flat with the functions of equations.py
 * (tests/families/centroids/test_backends.py holds this kernel to them):
 *   logits f_k = s_k - max_{j != k} s_j; label = argmax s, the first maximum (as top_two in torch;
 *   it is also the first argmax of f);
 *   for the explained cluster c and every rival k: margin h_k = s_c - s_k, soft-min share p_k of -beta h
 *   (beta = inf: split evenly among the smallest margins), pair relevance p_k f_c, factor
 *   a_k = p_k f_c / (h_k + (epsilon + relative (|s_c| + |s_k|)) sign h_k) (the stabiliser of
 *   validation.sign_stabiliser); origin weights g_k = a_k and g_c = -sum_k a_k.
 */
ALWAYS_INLINE int64_t NAME(row_neon_weights)(const T *s, T *f, T *h, T *g, Py_ssize_t cluster, double beta,
                                            T epsilon, T relative, Py_ssize_t k)
{
    Py_ssize_t best = 0;
    for (Py_ssize_t m = 1; m < k; ++m)
        if (s[m] > s[best]) best = m;
    T second = -INFINITY;
    for (Py_ssize_t m = 0; m < k; ++m)
        if (m != best && s[m] > second) second = s[m];
    T sum = 0;
    for (Py_ssize_t m = 0; m < k; ++m) {
        f[m] = s[m] - (m == best ? second : s[best]);
        sum += f[m];
    }
    /* finite as in labels_and_explained: NaN and infinity propagate into the row sum (which also overflows for
     * evidence beyond about 3e38 / K in float32) */
    if (!isfinite(sum)) { /* explain() reports the row; its relevance means nothing */
        for (Py_ssize_t m = 0; m < k; ++m) g[m] = NAN;
        return -1;
    }

    const Py_ssize_t c = cluster >= 0 ? cluster : best;
    T smallest = INFINITY;
    for (Py_ssize_t m = 0; m < k; ++m) {
        h[m] = s[c] - s[m];
        if (m != c && h[m] < smallest) smallest = h[m];
    }
    T total = 0;
    if (isinf(beta)) {
        for (Py_ssize_t m = 0; m < k; ++m) {
            g[m] = m != c && h[m] == smallest ? 1 : 0;
            total += g[m];
        }
    } else {
        const T stiffness = (T)beta;
        for (Py_ssize_t m = 0; m < k; ++m) {
            g[m] = m == c ? 0 : EXP(-stiffness * (h[m] - smallest));
            total += g[m];
        }
    }
    const T scale = f[c] / total;
    T own = 0;
    for (Py_ssize_t m = 0; m < k; ++m) {
        if (m == c) continue;
        const T stabiliser = epsilon + relative * ((s[c] < 0 ? -s[c] : s[c]) + (s[m] < 0 ? -s[m] : s[m]));
        g[m] = g[m] * scale / (h[m] + (h[m] >= 0 ? stabiliser : -stabiliser));
        own -= g[m];
    }
    g[c] = own;
    return best;
}

/*
 * The closed-form explainer of a flat centroid model (k-means): scores, row_neon_weights and the midpoint
 * relevance R_i = sum_m g_m mu_mi^2 - 2 (x_i - origin_i) sum_m g_m mu_mi, one row at a time, so that the row
 * stays in L1 from its scores to its relevance. Under a metric (k-means after a whitened PCA) the scores take
 * weight 2a and bias -a.mu, ``centres`` is a and ``squares`` holds one (K, D) table per explained cluster c
 * (stride K D): R_i = sum_m g_m T_c,mi - 2 (x_i - origin_i) sum_m g_m a_mi (metric_tables in equations.py). Returns 0, or -1 when a thread could not allocate its scratch.
 */
static int NAME(flat_explain)(const T *x, const T *origin, const T *weight, const T *bias, const T *squares,
                              const T *centres, Py_ssize_t stride, Py_ssize_t cluster, double beta, T epsilon,
                              T relative, int64_t *label,
                              T *logits, T *relevance, Py_ssize_t n, Py_ssize_t d, Py_ssize_t k, int threads)
{
    int failed = 0;
#pragma omp parallel num_threads(threads) reduction(|| : failed)
    {
        /* each thread its own scratch: shared cache lines would bounce between cores on every row */
        T *s = malloc(3 * (k > 0 ? k : 1) * sizeof(T)), *h = s + k, *g = h + k;
        failed = s == NULL;
#pragma omp for schedule(static)
        for (Py_ssize_t row = 0; row < n; ++row) {
            if (failed) continue;
            const T *xr = x + row * d;
            NAME(row_centred_linear)(xr, origin, weight, bias, s, d, k);
            label[row] = NAME(row_neon_weights)(s, logits + row * k, h, g, cluster, beta, epsilon, relative, k);
            /* stride 0: one table for every row (Euclidean); k d: the explained cluster's own (a metric) */
            const Py_ssize_t own = cluster >= 0 ? cluster : (label[row] >= 0 ? label[row] : 0);
            NAME(row_centred_addcmul)(xr, origin, g, squares + own * stride, centres, (T)-2, relevance + row * d, d, k);
        }
        free(s);
    }
    return failed ? -1 : 0;
}

#undef LANES
