/*
 * The kernels of _kernels.c for one floating-point type. Included once per type with
 *     T  the scalar type,  V  a vector of T (16, 32 or 64 bytes: the instruction set's register width),
 *     EXP  the exp of T,  NAME(f)  the name of f for this type and instruction set.
 */

enum { NAME(LANES) = sizeof(V) / sizeof(T) };
#define LANES NAME(LANES)

ALWAYS_INLINE T NAME(hsum)(const V *v)
{
    T s = 0;
    for (int l = 0; l < LANES; ++l) s += (*v)[l];
    return s;
}

/* out[m] = sum_i (x[i] - centre[i]) weight[m, i] + bias[m] for one row x. */
ALWAYS_INLINE void NAME(row_centred_linear)(const T *x, const T *centre, const T *weight, const T *bias, T *out,
                                            Py_ssize_t d, Py_ssize_t k)
{
    const Py_ssize_t dv = d - d % LANES;
    for (Py_ssize_t m0 = 0; m0 < k; m0 += SCORE_BLOCK) {
        const int nb = (int)(k - m0 < SCORE_BLOCK ? k - m0 : SCORE_BLOCK);
        const T *w = weight + m0 * d;
        V acc[SCORE_BLOCK];
        T tail[SCORE_BLOCK];
        for (int b = 0; b < SCORE_BLOCK; ++b) {
            acc[b] = (V){0};
            tail[b] = 0;
        }
        if (nb == SCORE_BLOCK) { /* a fixed count, so the accumulators stay in registers */
            for (Py_ssize_t i = 0; i < dv; i += LANES) {
                const V xc = *(const V *)(x + i) - *(const V *)(centre + i);
                for (int b = 0; b < SCORE_BLOCK; ++b) acc[b] += xc * *(const V *)(w + b * d + i);
            }
        } else {
            for (Py_ssize_t i = 0; i < dv; i += LANES) {
                const V xc = *(const V *)(x + i) - *(const V *)(centre + i);
                for (int b = 0; b < nb; ++b) acc[b] += xc * *(const V *)(w + b * d + i);
            }
        }
        for (Py_ssize_t i = dv; i < d; ++i) {
            const T xc = x[i] - centre[i];
            for (int b = 0; b < nb; ++b) tail[b] += xc * w[b * d + i];
        }
        for (int b = 0; b < nb; ++b) out[m0 + b] = NAME(hsum)(&acc[b]) + tail[b] + bias[m0 + b];
    }
}

/* out[i] = sum_m g[m] first[m, i] + value (x[i] - centre[i]) sum_m g[m] second[m, i] for one row x. */
ALWAYS_INLINE void NAME(row_centred_addcmul)(const T *x, const T *centre, const T *g, const T *first,
                                             const T *second, T value, T *out, Py_ssize_t d, Py_ssize_t k)
{
    const Py_ssize_t step = 4 * LANES; /* four vectors per step: eight independent multiply-add chains */
    const Py_ssize_t d4 = d - d % step, dv = d - d % LANES;
    Py_ssize_t i = 0;
    for (; i < d4; i += step) {
        V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
        for (Py_ssize_t m = 0; m < k; ++m) {
            const T gm = g[m];
            const T *u = second + m * d + i, *s = first + m * d + i;
            a0 += gm * *(const V *)(u);
            a1 += gm * *(const V *)(u + LANES);
            a2 += gm * *(const V *)(u + 2 * LANES);
            a3 += gm * *(const V *)(u + 3 * LANES);
            b0 += gm * *(const V *)(s);
            b1 += gm * *(const V *)(s + LANES);
            b2 += gm * *(const V *)(s + 2 * LANES);
            b3 += gm * *(const V *)(s + 3 * LANES);
        }
        const T *xi = x + i, *ci = centre + i;
        *(V *)(out + i) = b0 + value * (*(const V *)(xi) - *(const V *)(ci)) * a0;
        *(V *)(out + i + LANES) = b1 + value * (*(const V *)(xi + LANES) - *(const V *)(ci + LANES)) * a1;
        *(V *)(out + i + 2 * LANES) = b2 + value * (*(const V *)(xi + 2 * LANES) - *(const V *)(ci + 2 * LANES)) * a2;
        *(V *)(out + i + 3 * LANES) = b3 + value * (*(const V *)(xi + 3 * LANES) - *(const V *)(ci + 3 * LANES)) * a3;
    }
    for (; i < dv; i += LANES) {
        V a = {0}, b = {0};
        for (Py_ssize_t m = 0; m < k; ++m) {
            a += g[m] * *(const V *)(second + m * d + i);
            b += g[m] * *(const V *)(first + m * d + i);
        }
        *(V *)(out + i) = b + value * (*(const V *)(x + i) - *(const V *)(centre + i)) * a;
    }
    for (; i < d; ++i) {
        T a = 0, b = 0;
        for (Py_ssize_t m = 0; m < k; ++m) {
            a += g[m] * second[m * d + i];
            b += g[m] * first[m * d + i];
        }
        out[i] = b + value * (x[i] - centre[i]) * a;
    }
}

static void NAME(centred_linear)(const T *x, const T *centre, const T *weight, const T *bias, T *out,
                                              Py_ssize_t n, Py_ssize_t d, Py_ssize_t k, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (Py_ssize_t row = 0; row < n; ++row)
        NAME(row_centred_linear)(x + row * d, centre, weight, bias, out + row * k, d, k);
}

static void NAME(centred_addcmul)(const T *x, const T *centre, const T *g, const T *first,
                                               const T *second, T value, T *out, Py_ssize_t n, Py_ssize_t d,
                                               Py_ssize_t k, int threads)
{
#pragma omp parallel for schedule(static) num_threads(threads)
    for (Py_ssize_t row = 0; row < n; ++row)
        NAME(row_centred_addcmul)(x + row * d, centre, g + row * k, first, second, value, out + row * d, d, k);
}

/*
 * From the scores s of one row to its logits f, its label (returned; -1 if not finite) and the centre weights
 * g of its explanation: the same steps as CentroidExplainer.forward with the functions of functional.py
 * (which the tests hold this kernel to):
 *   logits f_k = s_k - max_{j != k} s_j; label = argmax f, the first maximum;
 *   for the explained cluster c and every rival k: margin h_k = s_c - s_k, soft-min share p_k of -beta h
 *   (beta = inf: split evenly among the smallest margins), pair relevance p_k f_c, factor
 *   a_k = p_k f_c / (h_k + epsilon sign h_k); centre weights g_k = a_k and g_c = -sum_k a_k.
 */
ALWAYS_INLINE int64_t NAME(row_neon_weights)(const T *s, T *f, T *h, T *g, Py_ssize_t cluster, double beta,
                                            T epsilon, Py_ssize_t k)
{
    Py_ssize_t best = 0;
    for (Py_ssize_t m = 1; m < k; ++m)
        if (s[m] > s[best]) best = m;
    T second = -INFINITY;
    for (Py_ssize_t m = 0; m < k; ++m)
        if (m != best && s[m] > second) second = s[m];
    Py_ssize_t top = 0;
    T sum = 0;
    for (Py_ssize_t m = 0; m < k; ++m) {
        f[m] = s[m] - (m == best ? second : s[best]);
        sum += f[m];
        if (f[m] > f[top]) top = m;
    }
    /* finite as in labels_and_explained: NaN and infinity propagate into the row sum (which also overflows for
     * evidence beyond about 3e38 / K in float32) */
    if (!isfinite(sum)) { /* explain() reports the row; its relevance means nothing */
        for (Py_ssize_t m = 0; m < k; ++m) g[m] = NAN;
        return -1;
    }

    const Py_ssize_t c = cluster >= 0 ? cluster : top;
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
        g[m] = g[m] * scale / (h[m] + (h[m] >= 0 ? epsilon : -epsilon));
        own -= g[m];
    }
    g[c] = own;
    return top;
}

/*
 * The closed-form explainer of a flat centroid model (k-means): scores, row_neon_weights and the midpoint
 * relevance R_i = sum_m g_m mu_mi^2 - 2 (x_i - centre_i) sum_m g_m mu_mi, one row at a time, so that the row
 * stays in L1 from its scores to its relevance. Returns 0, or -1 when a thread could not allocate its scratch.
 */
static int NAME(flat_explain)(const T *x, const T *centre, const T *weight, const T *bias, const T *squares,
                              const T *centres, Py_ssize_t cluster, double beta, T epsilon, int64_t *label,
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
            NAME(row_centred_linear)(xr, centre, weight, bias, s, d, k);
            label[row] = NAME(row_neon_weights)(s, logits + row * k, h, g, cluster, beta, epsilon, k);
            NAME(row_centred_addcmul)(xr, centre, g, squares, centres, (T)-2, relevance + row * d, d, k);
        }
        free(s);
    }
    return failed ? -1 : 0;
}

#undef LANES
