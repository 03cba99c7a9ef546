/*
 * The per-row operations every compiled kernel builds on, for one type and instruction set (for_each_type.h):
 * scores with the centring folded in (row_centred_linear) and the midpoint relevance (row_centred_addcmul).
 * Defines LANES; the including header undefines it at its end.
 */

enum { NAME(LANES) = sizeof(V) / sizeof(T) };
#define LANES NAME(LANES)

ALWAYS_INLINE T NAME(hsum)(const V *v)
{
    T s = 0;
    for (int l = 0; l < LANES; ++l) s += (*v)[l];
    return s;
}

/* out[m] = sum_i (x[i] - origin[i]) weight[m, i] + bias[m] for one row x. */
ALWAYS_INLINE void NAME(row_centred_linear)(const T *x, const T *origin, const T *weight, const T *bias, T *out,
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
                const V xc = *(const V *)(x + i) - *(const V *)(origin + i);
                for (int b = 0; b < SCORE_BLOCK; ++b) acc[b] += xc * *(const V *)(w + b * d + i);
            }
        } else {
            for (Py_ssize_t i = 0; i < dv; i += LANES) {
                const V xc = *(const V *)(x + i) - *(const V *)(origin + i);
                for (int b = 0; b < nb; ++b) acc[b] += xc * *(const V *)(w + b * d + i);
            }
        }
        for (Py_ssize_t i = dv; i < d; ++i) {
            const T xc = x[i] - origin[i];
            for (int b = 0; b < nb; ++b) tail[b] += xc * w[b * d + i];
        }
        for (int b = 0; b < nb; ++b) out[m0 + b] = NAME(hsum)(&acc[b]) + tail[b] + bias[m0 + b];
    }
}

/* out[i] = sum_m g[m] first[m, i] + value (x[i] - origin[i]) sum_m g[m] second[m, i] for one row x. */
ALWAYS_INLINE void NAME(row_centred_addcmul)(const T *x, const T *origin, const T *g, const T *first,
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
        const T *xi = x + i, *ci = origin + i;
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
        *(V *)(out + i) = b + value * (*(const V *)(x + i) - *(const V *)(origin + i)) * a;
    }
    for (; i < d; ++i) {
        T a = 0, b = 0;
        for (Py_ssize_t m = 0; m < k; ++m) {
            a += g[m] * second[m * d + i];
            b += g[m] * first[m * d + i];
        }
        out[i] = b + value * (x[i] - origin[i]) * a;
    }
}
