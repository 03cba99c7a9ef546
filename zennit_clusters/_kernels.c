/*
 * Fused CPU kernels for the two O(N K D) steps of the closed-form NEON explainer.
 *
 * Both fold the centring x - centre into the product, so X is read once per step and nothing of X's size
 * is materialised but the result:
 *
 *     centred_linear:   out[n, m] = sum_i (x[n, i] - centre[i]) weight[m, i] + bias[m]
 *     centred_addcmul:  out[n, i] = sum_m g[n, m] first[m, i] + value (x[n, i] - centre[i]) sum_m g[n, m] second[m, i]
 *
 * The equations that use them (scores and the midpoint rule) live in zennit_clusters/functional.py; the
 * torch expressions of the same two operations, and the checks that decide when these kernels may run,
 * are in zennit_clusters/kernels.py. Matrix libraries are slow on these shapes (an inner or outer dimension
 * of K ~ 10), and here each row stays in L1 while it is used. Rows are split over OpenMP threads; the GIL
 * is released while a kernel runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* Unaligned 64-byte vectors (GCC/Clang vector extensions): AVX-512 registers where available, split into
 * narrower instructions elsewhere. */
typedef float vfloat __attribute__((vector_size(64), aligned(4)));
typedef double vdouble __attribute__((vector_size(64), aligned(8)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MULTIVERSION
#endif

/* the row functions are inlined into each target clone, so that they are compiled for its instruction set */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define SCORE_BLOCK 8 /* centres per pass over a row: independent accumulators hide the FMA latency */

#define T float
#define V vfloat
#define EXP expf
#define NAME(f) f##_float
#include "_kernels_typed.h"
#undef T
#undef V
#undef EXP
#undef NAME

#define T double
#define V vdouble
#define EXP exp
#define NAME(f) f##_double
#include "_kernels_typed.h"
#undef T
#undef V
#undef EXP
#undef NAME

/* Arguments are raw addresses (checked by zennit_clusters/kernels.py), sizes and the thread count. */

static PyObject *py_centred_linear(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, centre, weight, bias, out;
    Py_ssize_t n, d, k;
    if (!PyArg_ParseTuple(args, "pKKKKKnnni", &is_double, &x, &centre, &weight, &bias, &out, &n, &d, &k,
                          &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        centred_linear_double((const double *)x, (const double *)centre, (const double *)weight, (const double *)bias,
                      (double *)out, n, d, k, threads);
    else
        centred_linear_float((const float *)x, (const float *)centre, (const float *)weight, (const float *)bias,
                     (float *)out, n, d, k, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_centred_addcmul(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, centre, g, first, second, out;
    double value;
    Py_ssize_t n, d, k;
    if (!PyArg_ParseTuple(args, "pKKKKKdKnnni", &is_double, &x, &centre, &g, &first, &second, &value, &out, &n,
                          &d, &k, &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        centred_addcmul_double((const double *)x, (const double *)centre, (const double *)g, (const double *)first,
                       (const double *)second, value, (double *)out, n, d, k, threads);
    else
        centred_addcmul_float((const float *)x, (const float *)centre, (const float *)g, (const float *)first,
                      (const float *)second, (float)value, (float *)out, n, d, k, threads);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *py_flat_explain(PyObject *self, PyObject *args)
{
    int is_double, threads;
    unsigned long long x, centre, weight, bias, squares, centres, label, logits, relevance;
    Py_ssize_t cluster, n, d, k;
    double beta, epsilon;
    int status;
    if (!PyArg_ParseTuple(args, "pKKKKKKnddKKKnnni", &is_double, &x, &centre, &weight, &bias, &squares, &centres,
                          &cluster, &beta, &epsilon, &label, &logits, &relevance, &n, &d, &k, &threads))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (is_double)
        status = flat_explain_double((const double *)x, (const double *)centre, (const double *)weight,
                            (const double *)bias, (const double *)squares, (const double *)centres, cluster, beta,
                            epsilon, (int64_t *)label, (double *)logits, (double *)relevance, n, d, k, threads);
    else
        status = flat_explain_float((const float *)x, (const float *)centre, (const float *)weight, (const float *)bias,
                           (const float *)squares, (const float *)centres, cluster, beta, (float)epsilon,
                           (int64_t *)label, (float *)logits, (float *)relevance, n, d, k, threads);
    Py_END_ALLOW_THREADS
    if (status != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"centred_linear", py_centred_linear, METH_VARARGS,
     "centred_linear(is_double, x, centre, weight, bias, out, n, d, k, threads)"},
    {"centred_addcmul", py_centred_addcmul, METH_VARARGS,
     "centred_addcmul(is_double, x, centre, g, first, second, value, out, n, d, k, threads)"},
    {"flat_explain", py_flat_explain, METH_VARARGS,
     "flat_explain(is_double, x, centre, weight, bias, squares, centres, cluster, beta, epsilon, label, logits, "
     "relevance, n, d, k, threads)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "Fused CPU kernels of the NEON explainer.",
                                   -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
